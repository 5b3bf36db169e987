-- hallpass schema, version 3: the admin web page's audit trail.
--
-- One row per state-changing action of an admin (login, logout, user edits, session ends,
-- key creation and revocation). `id` is a UUIDv7, so id order is time order; the page
-- lists newest first by id. `scope` and `target` are NULL when the action has none;
-- `detail` is a JSON object (never a secret). Not scoped like the other tables: the audit
-- trail is the operator's, across every scope.
CREATE TABLE admin_audit (
    id      TEXT    NOT NULL PRIMARY KEY,
    at      INTEGER NOT NULL,
    admin   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    scope   TEXT,
    target  TEXT,
    detail  TEXT    NOT NULL DEFAULT '{}'
) STRICT;
