-- hallpass schema, version 1.
--
-- Conventions (every table):
--   * `scope` TEXT on every row; every query filters by it (nothing crosses scopes).
--   * ids are UUIDs as lower-case hyphenated TEXT, so text order is UUIDv7 time order.
--   * instants are INTEGER milliseconds since the Unix epoch (UTC).
--   * JSON objects are TEXT; token and code hashes are 32-byte SHA-256 BLOBs.
--   * STRICT tables: SQLite refuses a value of the wrong type instead of storing it.
-- Applied inside one BEGIN IMMEDIATE transaction together with `PRAGMA user_version = 1`.

-- API keys name their scope; they are looked up by hash only (the hot path of every call).
CREATE TABLE api_keys (
    id          TEXT    NOT NULL PRIMARY KEY,
    scope       TEXT    NOT NULL,
    name        TEXT,
    key_hash    BLOB    NOT NULL CHECK (length(key_hash) = 32),
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;
CREATE UNIQUE INDEX api_keys_key_hash ON api_keys (key_hash);

-- Users. The primary key leads with the scope, so a scope's users are one contiguous
-- range in id order: listing pages and lookups by id are both index range scans.
-- `username_key` / `email_key` are the normalised forms the uniqueness rules compare;
-- `username` / `email` are what was typed. The unique indexes are partial so a user
-- without a username (or email) costs no index entry; NULLs never conflict.
CREATE TABLE users (
    scope          TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    username       TEXT,
    username_key   TEXT,
    email          TEXT,
    email_key      TEXT,
    group_name     TEXT    NOT NULL,
    extra          TEXT    NOT NULL DEFAULT '{}',
    active         INTEGER NOT NULL CHECK (active IN (0, 1)),
    confirmation   TEXT    CHECK (confirmation IN ('pending', 'failed')),
    confirmed      INTEGER NOT NULL CHECK (confirmed IN (0, 1)),
    password_hash  TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    last_login_at  INTEGER,
    PRIMARY KEY (scope, id),
    CHECK ((username IS NULL) = (username_key IS NULL)),
    CHECK ((email IS NULL) = (email_key IS NULL))
) STRICT;
-- The error mapping in src/error.rs recognises these by the column names SQLite reports
-- ("UNIQUE constraint failed: users.scope, users.username_key"); keep them in sync.
CREATE UNIQUE INDEX users_username_key ON users (scope, username_key) WHERE username_key IS NOT NULL;
CREATE UNIQUE INDEX users_email_key ON users (scope, email_key) WHERE email_key IS NOT NULL;

-- Sessions. Only the token's hash is kept. The foreign key names the scope too, so a
-- session can never belong to a user of another scope; deleting a user cascades (the
-- store also deletes explicitly, in the same transaction).
CREATE TABLE sessions (
    id                   TEXT    NOT NULL PRIMARY KEY,
    scope                TEXT    NOT NULL,
    user_id              TEXT    NOT NULL,
    token_hash           BLOB    NOT NULL CHECK (length(token_hash) = 32),
    created_at           INTEGER NOT NULL,
    last_seen_at         INTEGER NOT NULL,
    expires_at           INTEGER NOT NULL,
    absolute_expires_at  INTEGER NOT NULL,
    data                 TEXT    NOT NULL DEFAULT '{}',
    ip                   TEXT,
    user_agent           TEXT,
    FOREIGN KEY (scope, user_id) REFERENCES users (scope, id) ON DELETE CASCADE
) STRICT;
-- The hot path: get-session is one probe of this index, then the users primary key.
CREATE UNIQUE INDEX sessions_token_hash ON sessions (token_hash);
-- A user's sessions (listing newest first, ending all, the max-sessions cap) and the
-- foreign key's child lookup when a user row goes.
CREATE INDEX sessions_user ON sessions (scope, user_id, created_at);
-- The sweeper: a session is dead once the earlier of its two expiries has passed. The
-- sweep query uses this exact expression so the planner can use the index.
CREATE INDEX sessions_valid_until ON sessions (min(expires_at, absolute_expires_at));

-- One-time codes (reset, confirm, login), by hash only.
CREATE TABLE codes (
    code_hash   BLOB    NOT NULL CHECK (length(code_hash) = 32),
    scope       TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('reset', 'confirm', 'login')),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    FOREIGN KEY (scope, user_id) REFERENCES users (scope, id) ON DELETE CASCADE
) STRICT;
CREATE UNIQUE INDEX codes_code_hash ON codes (code_hash);
-- "A new code voids the older": delete by (scope, user, kind); also the FK child lookup.
CREATE INDEX codes_user ON codes (scope, user_id, kind);
CREATE INDEX codes_expires_at ON codes (expires_at);

-- Links to OAuth/OIDC providers: one per (user, provider); one user per
-- (scope, provider, client_id).
CREATE TABLE identities (
    scope                TEXT    NOT NULL,
    user_id              TEXT    NOT NULL,
    provider             TEXT    NOT NULL,
    client_id            TEXT    NOT NULL,
    access_token         TEXT,
    access_token_expiry  INTEGER,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    PRIMARY KEY (user_id, provider),
    FOREIGN KEY (scope, user_id) REFERENCES users (scope, id) ON DELETE CASCADE
) STRICT;
-- One user per (scope, provider, client_id). Recognised by src/error.rs as
-- "identities.client_id" in the constraint message. The scope comes last on purpose: led
-- by scope, this index would tie with the primary key for "a user's links" (scope =, user_id =)
-- and SQLite, without statistics, may pick it and scan the whole scope.
CREATE UNIQUE INDEX identities_client_id ON identities (provider, client_id, scope);

-- Login attempts. No foreign key: events outlive the user they name.
CREATE TABLE login_events (
    id          TEXT    NOT NULL PRIMARY KEY,
    scope       TEXT    NOT NULL,
    user_id     TEXT,
    at          INTEGER NOT NULL,
    method      TEXT    NOT NULL,
    outcome     TEXT    NOT NULL
                CHECK (outcome IN ('success', 'wrong_password', 'unknown_user', 'inactive', 'throttled')),
    session_id  TEXT,
    ip          TEXT,
    user_agent  TEXT
) STRICT;
-- A user's history, newest first, paged by id.
CREATE INDEX login_events_user ON login_events (scope, user_id, id);
-- Statistics over a time range; outcome and user_id ride along so the statistics query
-- is answered from the index alone.
CREATE INDEX login_events_at ON login_events (scope, at, outcome, user_id);
