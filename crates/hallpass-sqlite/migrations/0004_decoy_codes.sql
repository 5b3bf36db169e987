-- hallpass schema, version 4: `codes.user_id` may be NULL.
--
-- A reset-code request for a login that names nobody (or a user over the request limit)
-- stores a decoy: a code row with no user, written by the same DELETE and INSERT a real
-- code is, so both requests run the same statements and take the same time. Nobody knows
-- a decoy's code and every reader asks for `user_id IS NOT NULL`, so it is never
-- redeemed; it expires and is swept like any other code. A NULL foreign key is not
-- checked.
--
-- SQLite cannot change a column's constraints in place: the table is rebuilt (new table,
-- copy, drop, rename) and its indexes created again as in 0001_init.sql. Nothing
-- references `codes`, so dropping it inside the migrator's transaction with foreign keys
-- on deletes no other row.
CREATE TABLE codes_new (
    code_hash   BLOB    NOT NULL CHECK (length(code_hash) = 32),
    scope       TEXT    NOT NULL,
    user_id     TEXT,
    kind        TEXT    NOT NULL CHECK (kind IN ('reset', 'confirm', 'login')),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    FOREIGN KEY (scope, user_id) REFERENCES users (scope, id) ON DELETE CASCADE
) STRICT;
INSERT INTO codes_new (code_hash, scope, user_id, kind, created_at, expires_at)
    SELECT code_hash, scope, user_id, kind, created_at, expires_at FROM codes;
DROP TABLE codes;
ALTER TABLE codes_new RENAME TO codes;
CREATE UNIQUE INDEX codes_code_hash ON codes (code_hash);
-- "A new code voids the older": delete by (scope, user, kind); also the FK child lookup.
CREATE INDEX codes_user ON codes (scope, user_id, kind);
CREATE INDEX codes_expires_at ON codes (expires_at);
