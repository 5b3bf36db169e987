-- hallpass schema, version 3: the admin web page's audit trail.
--
-- One row per state-changing action of an admin (login, logout, user edits, session ends,
-- key creation and revocation). `id` is a UUIDv7, so id order is time order; the page
-- lists newest first by id (the primary key). `scope` and `target` are NULL when the
-- action has none; `detail` is a JSON object (never a secret). Not scoped like the other
-- tables: the audit trail is the operator's, across every scope.
CREATE TABLE admin_audit (
    id      uuid    NOT NULL,
    at      bigint  NOT NULL,
    admin   text    NOT NULL,
    action  text    NOT NULL,
    scope   text,
    target  text,
    detail  jsonb   NOT NULL DEFAULT '{}',
    CONSTRAINT admin_audit_pkey PRIMARY KEY (id)
);
