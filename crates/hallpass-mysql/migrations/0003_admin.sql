-- hallpass schema, version 3: the admin web page's audit trail (MariaDB 10.6+ / MySQL 8.0.16+).
--
-- One row per state-changing action of an admin (login, logout, user edits, session ends,
-- key creation and revocation). `id` is a UUIDv7, so id order is time order; the page
-- lists newest first by id (the primary key). `scope` and `target` are NULL when the
-- action has none; `detail` is a JSON object as text (never a secret). Not scoped like
-- the other tables: the audit trail is the operator's, across every scope. Idempotent,
-- like every migration of this dialect.
CREATE TABLE IF NOT EXISTS admin_audit (
    id      CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    at      BIGINT       NOT NULL,
    admin   VARCHAR(255) NOT NULL,
    action  VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    scope   VARCHAR(63)  CHARACTER SET ascii COLLATE ascii_bin,
    target  VARCHAR(255),
    detail  LONGTEXT     NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;
