-- hallpass schema, version 11: webhook endpoints (see hallpass-core's `webhook` module).
--
-- One row per endpoint of a scope. `events` is the subscribed event names joined by `,`.
-- `secret` and `previous_secret` are sealed by the server secret (`hp1.`...), never in
-- clear; `previous_secret` signs too until `previous_until` (a rotation's overlap).
-- Deliveries are outbox rows of kind `webhook` whose lane is the endpoint's id.
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id              CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    scope           VARCHAR(63)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    url             TEXT         NOT NULL,
    events          TEXT         CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    description     TEXT,
    secret          TEXT         CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    previous_secret TEXT         CHARACTER SET ascii COLLATE ascii_bin,
    previous_until  BIGINT,
    created_at      BIGINT       NOT NULL,
    updated_at      BIGINT       NOT NULL,
    PRIMARY KEY (id),
    KEY webhook_endpoints_scope (scope, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

-- The delivery log of one endpoint: its lane's rows, newest first.
CREATE INDEX IF NOT EXISTS outbox_lane ON outbox (kind, lane, id);
