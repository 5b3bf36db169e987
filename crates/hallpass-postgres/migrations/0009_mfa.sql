-- hallpass schema, version 9: second factors (hallpass_core::mfa).
--
-- `mfa_totp`: one TOTP per user, pending (`confirmed = false`) until a first code proves
-- it. `secret` is sealed by the server secret (`hp1.`...), never in clear. `last_step` is
-- the last accepted time step: a code is accepted by one `UPDATE ... WHERE last_step < $n`
-- that also records it (a concurrent one waits for the row and re-checks), so a step
-- works once per user even across processes.
CREATE TABLE mfa_totp (
    scope       text    NOT NULL,
    user_id     uuid    NOT NULL,
    secret      text    NOT NULL,
    confirmed   boolean NOT NULL DEFAULT false,
    last_step   bigint,
    created_at  bigint  NOT NULL,
    CONSTRAINT mfa_totp_pkey PRIMARY KEY (scope, user_id),
    CONSTRAINT mfa_totp_user_fkey FOREIGN KEY (scope, user_id)
        REFERENCES users (scope, id) ON DELETE CASCADE
);

-- `mfa_recovery_codes`: the user's unused recovery codes, by SHA-256 only; using one is
-- deleting its row. The primary key is also the foreign key's index.
CREATE TABLE mfa_recovery_codes (
    scope       text    NOT NULL,
    user_id     uuid    NOT NULL,
    code_hash   bytea   NOT NULL CHECK (octet_length(code_hash) = 32),
    created_at  bigint  NOT NULL,
    CONSTRAINT mfa_recovery_codes_pkey PRIMARY KEY (scope, user_id, code_hash),
    CONSTRAINT mfa_recovery_codes_user_fkey FOREIGN KEY (scope, user_id)
        REFERENCES users (scope, id) ON DELETE CASCADE
);

-- A wrong second factor is recorded as outcome `wrong_factor`.
ALTER TABLE login_events DROP CONSTRAINT login_events_outcome_check;
ALTER TABLE login_events ADD CONSTRAINT login_events_outcome_check
    CHECK (outcome IN ('success', 'wrong_password', 'unknown_user', 'inactive', 'throttled',
                       'invalid_state', 'token_exchange_failed', 'id_token_invalid', 'identity_unknown',
                       'wrong_factor'));

-- How each session's login proved who it is (`amr`, comma-separated: `pwd`, `email_code`,
-- `oidc`, then `otp` or `recovery`): the API shows it with the assurance level it implies.
-- Sessions made before this version have none ('').
ALTER TABLE sessions ADD COLUMN amr text NOT NULL DEFAULT '';
