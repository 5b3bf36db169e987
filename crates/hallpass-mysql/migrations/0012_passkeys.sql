-- hallpass schema, version 12: passkeys (hallpass_core::passkey). Idempotent, like every
-- migration of this dialect.
--
-- `passkeys`: a user's WebAuthn credentials. `credential` is webauthn-rs's serialised
-- `Passkey` (a public key and its counter: no secret); `counter`, `backup_eligible` and
-- `backup_state` repeat what it says after every use, for operators. A credential id is
-- registered once per scope (the discoverable sign-in finds the passkey by it).
CREATE TABLE IF NOT EXISTS passkeys (
    id              CHAR(36)       CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    scope           VARCHAR(63)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_id         CHAR(36)       CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    credential_id   VARBINARY(1023) NOT NULL,
    name            VARCHAR(400)   NOT NULL,
    credential      MEDIUMTEXT     NOT NULL,
    counter         BIGINT         NOT NULL DEFAULT 0,
    backup_eligible TINYINT        NOT NULL DEFAULT 0,
    backup_state    TINYINT        NOT NULL DEFAULT 0,
    created_at      BIGINT         NOT NULL,
    last_used_at    BIGINT,
    PRIMARY KEY (id),
    UNIQUE KEY passkeys_credential (scope, credential_id),
    KEY passkeys_user (scope, user_id, created_at),
    CONSTRAINT passkeys_user_fk FOREIGN KEY (scope, user_id) REFERENCES users (scope, id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

-- A refused passkey assertion is recorded as `invalid_passkey`, a cloned authenticator's
-- (its signature counter went back) as `passkey_cloned`.
ALTER TABLE login_events DROP CONSTRAINT IF EXISTS login_events_outcome;
ALTER TABLE login_events ADD CONSTRAINT login_events_outcome
    CHECK (outcome IN ('success', 'wrong_password', 'unknown_user', 'inactive', 'throttled',
                       'invalid_state', 'token_exchange_failed', 'id_token_invalid', 'identity_unknown',
                       'wrong_factor', 'invalid_passkey', 'passkey_cloned'));
