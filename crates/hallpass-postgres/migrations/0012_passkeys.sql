-- hallpass schema, version 12: passkeys (hallpass_core::passkey).
--
-- `passkeys`: a user's WebAuthn credentials. `credential` is webauthn-rs's serialised
-- `Passkey` (a public key and its counter: no secret); `counter`, `backup_eligible` and
-- `backup_state` repeat what it says after every use, for operators. A credential id is
-- registered once per scope (the discoverable sign-in finds the passkey by it).
CREATE TABLE passkeys (
    id              uuid    NOT NULL,
    scope           text    NOT NULL,
    user_id         uuid    NOT NULL,
    credential_id   bytea   NOT NULL,
    name            text    NOT NULL,
    credential      text    NOT NULL,
    counter         bigint  NOT NULL DEFAULT 0,
    backup_eligible boolean NOT NULL DEFAULT false,
    backup_state    boolean NOT NULL DEFAULT false,
    created_at      bigint  NOT NULL,
    last_used_at    bigint,
    CONSTRAINT passkeys_pkey PRIMARY KEY (id),
    CONSTRAINT passkeys_credential UNIQUE (scope, credential_id),
    CONSTRAINT passkeys_user_fkey FOREIGN KEY (scope, user_id)
        REFERENCES users (scope, id) ON DELETE CASCADE
);
CREATE INDEX passkeys_user ON passkeys (scope, user_id, created_at);

-- A refused passkey assertion is recorded as `invalid_passkey`, a cloned authenticator's
-- (its signature counter went back) as `passkey_cloned`.
ALTER TABLE login_events DROP CONSTRAINT login_events_outcome_check;
ALTER TABLE login_events ADD CONSTRAINT login_events_outcome_check
    CHECK (outcome IN ('success', 'wrong_password', 'unknown_user', 'inactive', 'throttled',
                       'invalid_state', 'token_exchange_failed', 'id_token_invalid', 'identity_unknown',
                       'wrong_factor', 'invalid_passkey', 'passkey_cloned'));
