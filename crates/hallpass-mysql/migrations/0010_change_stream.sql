-- hallpass schema, version 10: the change stream (`GET /v1/changes`). A change now names its
-- scope, and a session change the session's id and user as well as its token's hash:
-- `s:<scope>:<64 hex>:<uuid or ->:<uuid or ->:<e or c>` is at most 206 ASCII characters
-- (a scope name is at most 63), longer than version 5's 128. Rows are short-lived (pruned
-- after minutes), so widening the column is quick. Idempotent: MODIFY to the same type is
-- a no-op.
ALTER TABLE hallpass_changes MODIFY payload VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL;
