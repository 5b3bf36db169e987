-- hallpass schema, version 8: sign-in through identity providers (OIDC / OAuth 2.0).
--
-- `flows`: short-lived, single-use records (hallpass_core::flow): an OIDC sign-in's
-- `state` between start and callback, the one-time code the callback hands the backend,
-- later MFA challenges and passkey ceremonies. Keyed by the SHA-256 of the handle the
-- client holds; `kind` is free text (a new kind needs no migration); `payload` is the
-- flow's JSON. Taking a flow is one `DELETE ... RETURNING`, so it is used at most once.
-- The sweeper deletes expired rows through `flows_expires_at`.
CREATE TABLE flows (
    flow_hash   BLOB    NOT NULL PRIMARY KEY CHECK (length(flow_hash) = 32),
    scope       TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    payload     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX flows_expires_at ON flows (expires_at);

-- The provider's refresh token beside its access token. Both columns hold what the
-- service gives them: a token sealed by the server secret (`hp1.` + base64url of key id,
-- nonce and XChaCha20-Poly1305 ciphertext) when one is configured.
ALTER TABLE identities ADD COLUMN refresh_token TEXT;

-- Failed sign-ins through a provider are recorded with the reason an operator can act
-- on: four more outcomes. SQLite cannot change a CHECK in place: the table is rebuilt
-- (new table, copy, drop, rename) and its indexes made again as in 0001_init.sql.
-- Nothing references `login_events`.
CREATE TABLE login_events_new (
    id          TEXT    NOT NULL PRIMARY KEY,
    scope       TEXT    NOT NULL,
    user_id     TEXT,
    at          INTEGER NOT NULL,
    method      TEXT    NOT NULL,
    outcome     TEXT    NOT NULL
                CHECK (outcome IN ('success', 'wrong_password', 'unknown_user', 'inactive', 'throttled',
                                   'invalid_state', 'token_exchange_failed', 'id_token_invalid',
                                   'identity_unknown')),
    session_id  TEXT,
    ip          TEXT,
    user_agent  TEXT
) STRICT;
INSERT INTO login_events_new (id, scope, user_id, at, method, outcome, session_id, ip, user_agent)
    SELECT id, scope, user_id, at, method, outcome, session_id, ip, user_agent FROM login_events;
DROP TABLE login_events;
ALTER TABLE login_events_new RENAME TO login_events;
CREATE INDEX login_events_user ON login_events (scope, user_id, id);
CREATE INDEX login_events_at ON login_events (scope, at, outcome, user_id);
