-- hallpass schema, version 1 (MariaDB 10.6+ / MySQL 8.0.16+ dialect).
--
-- Conventions (every table):
--   * InnoDB, ROW_FORMAT=DYNAMIC (index keys up to 3072 bytes), utf8mb4 with a binary
--     collation by default: nothing is compared case- or accent-insensitively by accident.
--   * `scope` VARCHAR(63) ASCII on every row; every query filters by it.
--   * ids are UUIDs as CHAR(36) ASCII lower-case hyphenated text, so text order is UUIDv7
--     time order (`ORDER BY id` is creation order) and rows read well in a SQL shell.
--   * instants are BIGINT milliseconds since the Unix epoch (UTC).
--   * JSON objects are LONGTEXT checked by JSON_VALID (MariaDB's JSON type is exactly that;
--     MySQL's binary JSON type would re-serialise what the application stored).
--   * token and code hashes are BINARY(32) SHA-256 digests.
--   * values compared for equality that may hold arbitrary text (the normalised username
--     and email keys, group, provider client id, password hash) are VARBINARY: compared
--     byte for byte. A `_bin` collation would still be PAD SPACE ('a' = 'a ') in MariaDB,
--     and VARBINARY lengths count bytes, which is what InnoDB's index limit counts.
--
-- MySQL commits DDL implicitly, one statement at a time, so a migration cannot be
-- atomic. Every statement here is therefore idempotent (IF NOT EXISTS): if a run stops
-- half-way, the next run completes it. Indexes and foreign keys are declared inside
-- their CREATE TABLE, so each table appears whole or not at all. The migrator
-- (src/migrate.rs) runs this file under a named lock and records it in
-- `hallpass_migrations` only after every statement succeeded.

-- API keys name their scope; they are looked up by hash only.
CREATE TABLE IF NOT EXISTS api_keys (
    id          CHAR(36)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    scope       VARCHAR(63) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    name        TEXT,
    key_hash    BINARY(32)  NOT NULL,
    created_at  BIGINT      NOT NULL,
    revoked_at  BIGINT,
    PRIMARY KEY (id),
    UNIQUE KEY api_keys_key_hash (key_hash),
    KEY api_keys_created (created_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

-- Users. The primary key leads with the scope: a scope's users are one contiguous range
-- of the clustered index in id order, so listing pages and lookups by id are range scans.
-- `username_key` / `email_key` hold the normalised forms the uniqueness rules compare;
-- `username` / `email` what was typed. A username key is NFKC + lower-case + NFKC of at
-- most 64 characters; NFKC expands one character to at most 33 bytes (U+FDFA), hence
-- 2112 bytes. An email key is at most 254 bytes typed, at most 381 once its domain is
-- lower-cased. Several NULL keys never conflict in an InnoDB unique index.
--
-- The error mapping (src/error.rs) recognises the unique indexes by name in the
-- duplicate-key message; keep the names in sync. The username index is declared before
-- the email index: InnoDB checks unique indexes in declaration order, so when both are
-- taken the username conflict is the one reported, as in the reference store.
CREATE TABLE IF NOT EXISTS users (
    scope          VARCHAR(63)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    id             CHAR(36)        CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    username       VARCHAR(64),
    username_key   VARBINARY(2112),
    email          VARCHAR(254),
    email_key      VARBINARY(512),
    group_name     VARBINARY(256)  NOT NULL,
    extra          LONGTEXT        NOT NULL,
    active         BOOLEAN         NOT NULL,
    confirmation   VARCHAR(16)     CHARACTER SET ascii COLLATE ascii_bin,
    confirmed      BOOLEAN         NOT NULL,
    password_hash  VARBINARY(1024),
    created_at     BIGINT          NOT NULL,
    updated_at     BIGINT          NOT NULL,
    last_login_at  BIGINT,
    PRIMARY KEY (scope, id),
    UNIQUE KEY users_username_key (scope, username_key),
    UNIQUE KEY users_email_key (scope, email_key),
    CONSTRAINT users_extra_json CHECK (JSON_VALID(extra)),
    CONSTRAINT users_confirmation CHECK (confirmation IN ('pending', 'failed')),
    CONSTRAINT users_username_pair CHECK ((username IS NULL) = (username_key IS NULL)),
    CONSTRAINT users_email_pair CHECK ((email IS NULL) = (email_key IS NULL))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

-- Sessions. Only the token's hash is kept. The foreign key names the scope too, so a
-- session can never belong to a user of another scope; deleting a user cascades (the
-- store also deletes explicitly, in the same transaction). `valid_until` is the earlier
-- of the two expiries, kept by the server (a generated column) so that listing and
-- sweeping can use an index on it.
CREATE TABLE IF NOT EXISTS sessions (
    id                   CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    scope                VARCHAR(63)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_id              CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    token_hash           BINARY(32)   NOT NULL,
    created_at           BIGINT       NOT NULL,
    last_seen_at         BIGINT       NOT NULL,
    expires_at           BIGINT       NOT NULL,
    absolute_expires_at  BIGINT       NOT NULL,
    valid_until          BIGINT       AS (LEAST(expires_at, absolute_expires_at)) STORED,
    data                 LONGTEXT     NOT NULL,
    ip                   TEXT,
    user_agent           TEXT,
    PRIMARY KEY (id),
    -- The hot path: get-session is one probe of this index, then the users primary key.
    UNIQUE KEY sessions_token_hash (token_hash),
    -- A user's sessions: listing newest first, ending all, the max-sessions cap, and the
    -- foreign key's index.
    KEY sessions_user (scope, user_id, created_at),
    -- The sweeper.
    KEY sessions_valid_until (valid_until),
    CONSTRAINT sessions_user_fk FOREIGN KEY (scope, user_id) REFERENCES users (scope, id) ON DELETE CASCADE,
    CONSTRAINT sessions_data_json CHECK (JSON_VALID(data))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

-- One-time codes (reset, confirm, login), by hash only.
CREATE TABLE IF NOT EXISTS codes (
    code_hash   BINARY(32)   NOT NULL,
    scope       VARCHAR(63)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_id     CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    kind        VARCHAR(16)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at  BIGINT       NOT NULL,
    expires_at  BIGINT       NOT NULL,
    PRIMARY KEY (code_hash),
    -- "A new code voids the older": delete by (scope, user, kind); also the FK's index.
    KEY codes_user (scope, user_id, kind),
    KEY codes_expires_at (expires_at),
    CONSTRAINT codes_user_fk FOREIGN KEY (scope, user_id) REFERENCES users (scope, id) ON DELETE CASCADE,
    CONSTRAINT codes_kind CHECK (kind IN ('reset', 'confirm', 'login'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

-- Links to OAuth/OIDC providers: one per (user, provider) (the primary key), one user per
-- (scope, provider, client_id) (recognised by src/error.rs as `identities_client_id`).
-- A client id is up to 255 characters of any text: VARBINARY(1020) bytes.
CREATE TABLE IF NOT EXISTS identities (
    scope                VARCHAR(63)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_id              CHAR(36)        CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    provider             VARCHAR(63)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    client_id            VARBINARY(1020) NOT NULL,
    access_token         TEXT,
    access_token_expiry  BIGINT,
    created_at           BIGINT          NOT NULL,
    updated_at           BIGINT          NOT NULL,
    PRIMARY KEY (scope, user_id, provider),
    UNIQUE KEY identities_client_id (scope, provider, client_id),
    CONSTRAINT identities_user_fk FOREIGN KEY (scope, user_id) REFERENCES users (scope, id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

-- Login attempts. No foreign key: events outlive the user they name. Clustered by id
-- (UUIDv7), so new events append.
CREATE TABLE IF NOT EXISTS login_events (
    id          CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    scope       VARCHAR(63)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_id     CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin,
    at          BIGINT       NOT NULL,
    method      VARCHAR(128) NOT NULL,
    outcome     VARCHAR(16)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    session_id  CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin,
    ip          TEXT,
    user_agent  TEXT,
    PRIMARY KEY (id),
    -- A user's history, newest first, paged by id.
    KEY login_events_user (scope, user_id, id),
    -- Statistics over a time range, answered from the index alone.
    KEY login_events_at (scope, at, outcome, user_id),
    CONSTRAINT login_events_outcome
        CHECK (outcome IN ('success', 'wrong_password', 'unknown_user', 'inactive', 'throttled'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;
