-- hallpass schema for PostgreSQL, version 1.
--
-- The database must use the UTF8 encoding (the migrator checks). Text columns use the
-- database's default collation, except where a comment says otherwise: equality does not
-- depend on it, and the user search (ILIKE) folds case by its LC_CTYPE.
--
-- Conventions (every table):
--   * `scope` text on every row; every query filters by it (nothing crosses scopes).
--   * ids are `uuid` (UUIDv7): PostgreSQL orders uuids bytewise, so `ORDER BY id` is
--     time order and agrees with Rust's `Uuid` order.
--   * instants are bigint milliseconds since the Unix epoch (UTC), as in the SQLite
--     schema: exact round trips at the precision the core keeps, and bucket arithmetic
--     for the statistics is integer arithmetic.
--   * JSON objects are jsonb; token and code hashes are 32-byte SHA-256 bytea.
--   * constraints the store maps to domain errors carry explicit names, because the
--     error mapping (src/error.rs) recognises a unique violation by its constraint name.
--
-- Applied by sqlx's migrator in one transaction (DDL is transactional in PostgreSQL),
-- under a session advisory lock, so two processes migrating at once apply it once.
-- Migrations are append-only: never edit this file once shipped (sqlx checksums it);
-- add 0002_....sql and list it in src/migrate.rs.

-- API keys name their scope; they are looked up by hash only (every API call).
CREATE TABLE api_keys (
    id          uuid    NOT NULL,
    scope       text    NOT NULL,
    name        text,
    key_hash    bytea   NOT NULL CHECK (octet_length(key_hash) = 32),
    created_at  bigint  NOT NULL,
    revoked_at  bigint,
    CONSTRAINT api_keys_pkey PRIMARY KEY (id),
    CONSTRAINT api_keys_key_hash UNIQUE (key_hash)
);

-- Users. The primary key leads with the scope, so a scope's users are one contiguous
-- range in id order: listing pages and lookups by id are both index range scans.
-- `username_key` / `email_key` are the normalised forms the uniqueness rules compare;
-- `username` / `email` are what was typed. NULLs never conflict in a UNIQUE constraint,
-- so users without a username (or email) never collide.
CREATE TABLE users (
    scope          text     NOT NULL,
    id             uuid     NOT NULL,
    username       text,
    username_key   text,
    email          text,
    email_key      text,
    group_name     text     NOT NULL,
    extra          jsonb    NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(extra) = 'object'),
    active         boolean  NOT NULL,
    confirmation   text     CHECK (confirmation IN ('pending', 'failed')),
    confirmed      boolean  NOT NULL,
    password_hash  text,
    created_at     bigint   NOT NULL,
    updated_at     bigint   NOT NULL,
    last_login_at  bigint,
    CONSTRAINT users_pkey PRIMARY KEY (scope, id),
    -- src/error.rs maps violations of these two to UsernameTaken / EmailTaken.
    CONSTRAINT users_username_key UNIQUE (scope, username_key),
    CONSTRAINT users_email_key UNIQUE (scope, email_key),
    CHECK ((username IS NULL) = (username_key IS NULL)),
    CHECK ((email IS NULL) = (email_key IS NULL))
);

-- Sessions. Only the token's hash is kept. The foreign key names the scope too, so a
-- session can never belong to a user of another scope; deleting a user cascades (the
-- store also deletes explicitly, in the same transaction).
CREATE TABLE sessions (
    id                   uuid    NOT NULL,
    scope                text    NOT NULL,
    user_id              uuid    NOT NULL,
    token_hash           bytea   NOT NULL CHECK (octet_length(token_hash) = 32),
    created_at           bigint  NOT NULL,
    last_seen_at         bigint  NOT NULL,
    expires_at           bigint  NOT NULL,
    absolute_expires_at  bigint  NOT NULL,
    data                 jsonb   NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object'),
    ip                   text,
    user_agent           text,
    CONSTRAINT sessions_pkey PRIMARY KEY (id),
    -- The hot path: get-session is one probe of this index, then the users primary key.
    CONSTRAINT sessions_token_hash UNIQUE (token_hash),
    CONSTRAINT sessions_user_fkey FOREIGN KEY (scope, user_id)
        REFERENCES users (scope, id) ON DELETE CASCADE
);
-- A user's sessions (listing newest first, ending all, the max-sessions cap) and the
-- foreign key's child lookup when a user row goes.
CREATE INDEX sessions_user ON sessions (scope, user_id, created_at);
-- The sweeper: a session is dead once the earlier of its two expiries has passed. The
-- sweep query uses this exact expression so the planner can use the index. (It costs
-- freshen its HOT updates, since freshen moves expires_at; freshen writes at most once
-- per interval, and without it every sweep would scan the whole table.)
CREATE INDEX sessions_valid_until ON sessions (LEAST(expires_at, absolute_expires_at));

-- One-time codes (reset, confirm, login), by hash only. At most one per (scope, user,
-- kind): "a new code voids the older" is this constraint, and the store's insert is an
-- upsert on it, so two concurrent requests for a code cannot leave two valid codes.
CREATE TABLE codes (
    code_hash   bytea   NOT NULL CHECK (octet_length(code_hash) = 32),
    scope       text    NOT NULL,
    user_id     uuid    NOT NULL,
    kind        text    NOT NULL CHECK (kind IN ('reset', 'confirm', 'login')),
    created_at  bigint  NOT NULL,
    expires_at  bigint  NOT NULL,
    CONSTRAINT codes_pkey PRIMARY KEY (code_hash),
    CONSTRAINT codes_one_per_kind UNIQUE (scope, user_id, kind),
    CONSTRAINT codes_user_fkey FOREIGN KEY (scope, user_id)
        REFERENCES users (scope, id) ON DELETE CASCADE
);
CREATE INDEX codes_expires_at ON codes (expires_at);

-- Links to OAuth/OIDC providers: one per (user, provider); one user per
-- (scope, provider, client_id).
CREATE TABLE identities (
    scope                text    NOT NULL,
    user_id              uuid    NOT NULL,
    -- COLLATE "C": a user's links are listed by provider in byte order, as every other
    -- backend lists them, whatever the database's default collation.
    provider             text    COLLATE "C" NOT NULL,
    client_id            text    NOT NULL,
    access_token         text,
    access_token_expiry  bigint,
    created_at           bigint  NOT NULL,
    updated_at           bigint  NOT NULL,
    -- Also serves "a user's links by provider" and the foreign key's child lookup.
    CONSTRAINT identities_pkey PRIMARY KEY (user_id, provider),
    -- src/error.rs maps a violation of this one to IdentityTaken.
    CONSTRAINT identities_client_id UNIQUE (scope, provider, client_id),
    CONSTRAINT identities_user_fkey FOREIGN KEY (scope, user_id)
        REFERENCES users (scope, id) ON DELETE CASCADE
);

-- Login attempts. No foreign key: events outlive the user they name.
CREATE TABLE login_events (
    id          uuid    NOT NULL,
    scope       text    NOT NULL,
    user_id     uuid,
    at          bigint  NOT NULL,
    method      text    NOT NULL,
    outcome     text    NOT NULL
                CHECK (outcome IN ('success', 'wrong_password', 'unknown_user', 'inactive', 'throttled')),
    session_id  uuid,
    ip          text,
    user_agent  text,
    CONSTRAINT login_events_pkey PRIMARY KEY (id)
);
-- A user's history, newest first, paged by id.
CREATE INDEX login_events_user ON login_events (scope, user_id, id);
-- Statistics count successful logins only: a partial index over them, with user_id
-- carried along, answers the statistics query from the index alone (after vacuum).
CREATE INDEX login_events_success ON login_events (scope, at) INCLUDE (user_id)
    WHERE outcome = 'success';
