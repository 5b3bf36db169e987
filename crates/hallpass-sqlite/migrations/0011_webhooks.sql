-- hallpass schema, version 11: webhook endpoints (see hallpass-core's `webhook` module).
--
-- One row per endpoint of a scope. `events` is the subscribed event names joined by `,`.
-- `secret` and `previous_secret` are sealed by the server secret (`hp1.`...), never in
-- clear; `previous_secret` signs too until `previous_until` (a rotation's overlap).
-- Deliveries are outbox rows of kind `webhook` whose lane is the endpoint's id.
CREATE TABLE webhook_endpoints (
    id              TEXT    NOT NULL PRIMARY KEY,
    scope           TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    events          TEXT    NOT NULL,
    description     TEXT,
    secret          TEXT    NOT NULL,
    previous_secret TEXT,
    previous_until  INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;

CREATE INDEX webhook_endpoints_scope ON webhook_endpoints (scope, id);

-- The delivery log of one endpoint: its lane's rows, newest first.
CREATE INDEX outbox_lane ON outbox (kind, lane, id);
