-- hallpass schema, version 11: webhook endpoints (see hallpass-core's `webhook` module).
--
-- One row per endpoint of a scope. `events` is the subscribed event names joined by `,`.
-- `secret` and `previous_secret` are sealed by the server secret (`hp1.`...), never in
-- clear; `previous_secret` signs too until `previous_until` (a rotation's overlap).
-- Deliveries are outbox rows of kind `webhook` whose lane is the endpoint's id.
CREATE TABLE webhook_endpoints (
    id              uuid    NOT NULL,
    scope           text    NOT NULL,
    url             text    NOT NULL,
    events          text    NOT NULL,
    description     text,
    secret          text    NOT NULL,
    previous_secret text,
    previous_until  bigint,
    created_at      bigint  NOT NULL,
    updated_at      bigint  NOT NULL,
    CONSTRAINT webhook_endpoints_pkey PRIMARY KEY (id)
);

CREATE INDEX webhook_endpoints_scope ON webhook_endpoints (scope, id);

-- The delivery log of one endpoint: its lane's rows, newest first.
CREATE INDEX outbox_lane ON outbox (kind, lane, id);
