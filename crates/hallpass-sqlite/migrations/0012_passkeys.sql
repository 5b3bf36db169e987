-- hallpass schema, version 12: passkeys (hallpass_core::passkey).
--
-- `passkeys`: a user's WebAuthn credentials. `credential` is webauthn-rs's serialised
-- `Passkey` (a public key and its counter: no secret); `counter`, `backup_eligible` and
-- `backup_state` repeat what it says after every use, for operators. A credential id is
-- registered once per scope (the discoverable sign-in finds the passkey by it).
CREATE TABLE passkeys (
    id              TEXT    NOT NULL PRIMARY KEY,
    scope           TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    credential_id   BLOB    NOT NULL,
    name            TEXT    NOT NULL,
    credential      TEXT    NOT NULL,
    counter         INTEGER NOT NULL DEFAULT 0,
    backup_eligible INTEGER NOT NULL DEFAULT 0 CHECK (backup_eligible IN (0, 1)),
    backup_state    INTEGER NOT NULL DEFAULT 0 CHECK (backup_state IN (0, 1)),
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER,
    FOREIGN KEY (scope, user_id) REFERENCES users (scope, id) ON DELETE CASCADE
) STRICT;
CREATE UNIQUE INDEX passkeys_credential ON passkeys (scope, credential_id);
CREATE INDEX passkeys_user ON passkeys (scope, user_id, created_at);

-- A refused passkey assertion is recorded as `invalid_passkey`, a cloned authenticator's
-- (its signature counter went back) as `passkey_cloned`: the CHECK grows, so the table is
-- rebuilt as in 0009_mfa.sql.
CREATE TABLE login_events_new (
    id          TEXT    NOT NULL PRIMARY KEY,
    scope       TEXT    NOT NULL,
    user_id     TEXT,
    at          INTEGER NOT NULL,
    method      TEXT    NOT NULL,
    outcome     TEXT    NOT NULL
                CHECK (outcome IN ('success', 'wrong_password', 'unknown_user', 'inactive', 'throttled',
                                   'invalid_state', 'token_exchange_failed', 'id_token_invalid',
                                   'identity_unknown', 'wrong_factor', 'invalid_passkey',
                                   'passkey_cloned')),
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
