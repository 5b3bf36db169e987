-- hallpass schema, version 9: second factors (hallpass_core::mfa).
--
-- `mfa_totp`: one TOTP per user, pending (`confirmed = 0`) until a first code proves it.
-- `secret` is sealed by the server secret (`hp1.`...), never in clear. `last_step` is the
-- last accepted time step: a code is accepted by one `UPDATE ... WHERE last_step < ?`
-- that also records it, so a step works once per user even when raced.
CREATE TABLE mfa_totp (
    scope       TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    secret      TEXT    NOT NULL,
    confirmed   INTEGER NOT NULL DEFAULT 0 CHECK (confirmed IN (0, 1)),
    last_step   INTEGER,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (scope, user_id),
    FOREIGN KEY (scope, user_id) REFERENCES users (scope, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- `mfa_recovery_codes`: the user's unused recovery codes, by SHA-256 only; using one is
-- deleting its row. The primary key is also the foreign key's index.
CREATE TABLE mfa_recovery_codes (
    scope       TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    code_hash   BLOB    NOT NULL CHECK (length(code_hash) = 32),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (scope, user_id, code_hash),
    FOREIGN KEY (scope, user_id) REFERENCES users (scope, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- A wrong second factor is recorded as outcome `wrong_factor`: the CHECK grows, so the
-- table is rebuilt as in 0008_oidc.sql.
CREATE TABLE login_events_new (
    id          TEXT    NOT NULL PRIMARY KEY,
    scope       TEXT    NOT NULL,
    user_id     TEXT,
    at          INTEGER NOT NULL,
    method      TEXT    NOT NULL,
    outcome     TEXT    NOT NULL
                CHECK (outcome IN ('success', 'wrong_password', 'unknown_user', 'inactive', 'throttled',
                                   'invalid_state', 'token_exchange_failed', 'id_token_invalid',
                                   'identity_unknown', 'wrong_factor')),
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

-- How each session's login proved who it is (`amr`, comma-separated: `pwd`, `email_code`,
-- `oidc`, then `otp` or `recovery`): the API shows it with the assurance level it implies.
-- Sessions made before this version have none ('').
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '';
