-- hallpass schema, version 8: sign-in through identity providers (OIDC / OAuth 2.0).
--
-- `flows`: short-lived, single-use records (hallpass_core::flow): an OIDC sign-in's
-- `state` between start and callback, the one-time code the callback hands the backend,
-- later MFA challenges and passkey ceremonies. Keyed by the SHA-256 of the handle the
-- client holds; `kind` is free text (a new kind needs no migration); `payload` is the
-- flow's JSON. A take deletes the row with all its conditions, and only the one caller
-- that deleted it gets the flow. The sweeper deletes expired rows through
-- `flows_expires_at`. Idempotent, like every migration of this dialect.
CREATE TABLE IF NOT EXISTS flows (
    flow_hash   BINARY(32)   NOT NULL,
    scope       VARCHAR(63)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    kind        VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    payload     MEDIUMTEXT   NOT NULL,
    created_at  BIGINT       NOT NULL,
    expires_at  BIGINT       NOT NULL,
    PRIMARY KEY (flow_hash),
    KEY flows_expires_at (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

-- The provider's refresh token beside its access token. Both columns hold what the
-- service gives them: a token sealed by the server secret (`hp1.` + base64url of key id,
-- nonce and XChaCha20-Poly1305 ciphertext) when one is configured.
ALTER TABLE identities ADD COLUMN IF NOT EXISTS refresh_token TEXT;

-- Failed sign-ins through a provider are recorded with the reason an operator can act
-- on: four more outcomes, the longest 21 characters (the column was 16).
ALTER TABLE login_events DROP CONSTRAINT IF EXISTS login_events_outcome;
ALTER TABLE login_events MODIFY outcome VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL;
ALTER TABLE login_events ADD CONSTRAINT login_events_outcome
    CHECK (outcome IN ('success', 'wrong_password', 'unknown_user', 'inactive', 'throttled',
                       'invalid_state', 'token_exchange_failed', 'id_token_invalid', 'identity_unknown'));
