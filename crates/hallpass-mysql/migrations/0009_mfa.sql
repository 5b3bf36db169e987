-- hallpass schema, version 9: second factors (hallpass_core::mfa). Idempotent, like every
-- migration of this dialect.
--
-- `mfa_totp`: one TOTP per user, pending (`confirmed = 0`) until a first code proves it.
-- `secret` is sealed by the server secret (`hp1.`...), never in clear. `last_step` is the
-- last accepted time step: a code is accepted by one `UPDATE ... WHERE last_step < ?`
-- that also records it (InnoDB re-checks the condition against the latest committed row),
-- so a step works once per user even across processes.
CREATE TABLE IF NOT EXISTS mfa_totp (
    scope       VARCHAR(63)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_id     CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    secret      TEXT         NOT NULL,
    confirmed   TINYINT      NOT NULL DEFAULT 0,
    last_step   BIGINT,
    created_at  BIGINT       NOT NULL,
    PRIMARY KEY (scope, user_id),
    CONSTRAINT mfa_totp_user_fk FOREIGN KEY (scope, user_id) REFERENCES users (scope, id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

-- `mfa_recovery_codes`: the user's unused recovery codes, by SHA-256 only; using one is
-- deleting its row. The primary key is also the foreign key's index.
CREATE TABLE IF NOT EXISTS mfa_recovery_codes (
    scope       VARCHAR(63)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_id     CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    code_hash   BINARY(32)   NOT NULL,
    created_at  BIGINT       NOT NULL,
    PRIMARY KEY (scope, user_id, code_hash),
    CONSTRAINT mfa_recovery_codes_user_fk FOREIGN KEY (scope, user_id)
        REFERENCES users (scope, id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

-- A wrong second factor is recorded as outcome `wrong_factor`.
ALTER TABLE login_events DROP CONSTRAINT IF EXISTS login_events_outcome;
ALTER TABLE login_events ADD CONSTRAINT login_events_outcome
    CHECK (outcome IN ('success', 'wrong_password', 'unknown_user', 'inactive', 'throttled',
                       'invalid_state', 'token_exchange_failed', 'id_token_invalid', 'identity_unknown',
                       'wrong_factor'));

-- How each session's login proved who it is (`amr`, comma-separated: `pwd`, `email_code`,
-- `oidc`, then `otp` or `recovery`): the API shows it with the assurance level it implies.
-- Sessions made before this version have none ('').
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS amr VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '';
