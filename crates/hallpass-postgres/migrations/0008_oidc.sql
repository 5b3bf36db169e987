-- hallpass schema, version 8: sign-in through identity providers (OIDC / OAuth 2.0).
--
-- `flows`: short-lived, single-use records (hallpass_core::flow): an OIDC sign-in's
-- `state` between start and callback, the one-time code the callback hands the backend,
-- later MFA challenges and passkey ceremonies. Keyed by the SHA-256 of the handle the
-- client holds; `kind` is free text (a new kind needs no migration); `payload` is the
-- flow's JSON as text. Taking a flow is one `DELETE ... RETURNING`, so it is used at most
-- once. The sweeper deletes expired rows through `flows_expires_at`.
CREATE TABLE flows (
    flow_hash   bytea   NOT NULL CHECK (octet_length(flow_hash) = 32),
    scope       text    NOT NULL,
    kind        text    NOT NULL,
    payload     text    NOT NULL,
    created_at  bigint  NOT NULL,
    expires_at  bigint  NOT NULL,
    CONSTRAINT flows_pkey PRIMARY KEY (flow_hash)
);
CREATE INDEX flows_expires_at ON flows (expires_at);

-- The provider's refresh token beside its access token. Both columns hold what the
-- service gives them: a token sealed by the server secret (`hp1.` + base64url of key id,
-- nonce and XChaCha20-Poly1305 ciphertext) when one is configured.
ALTER TABLE identities ADD COLUMN refresh_token text;

-- Failed sign-ins through a provider are recorded with the reason an operator can act
-- on: four more outcomes (the inline CHECK of 0001_init.sql has PostgreSQL's default name).
ALTER TABLE login_events DROP CONSTRAINT login_events_outcome_check;
ALTER TABLE login_events ADD CONSTRAINT login_events_outcome_check
    CHECK (outcome IN ('success', 'wrong_password', 'unknown_user', 'inactive', 'throttled',
                       'invalid_state', 'token_exchange_failed', 'id_token_invalid', 'identity_unknown'));
