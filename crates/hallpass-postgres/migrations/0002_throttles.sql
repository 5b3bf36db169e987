-- hallpass schema, version 2: login throttling counters.
--
-- One row per (scope, key), such as `acct:<user id>` or `ip:<address>`: the consecutive
-- failures counted since `first_at`, the latest at `last_at`; the row is forgotten at
-- `expires_at` (the sweeper deletes it, and a hit after it starts the count again).
-- Instants are bigint Unix milliseconds, as everywhere.
CREATE TABLE throttles (
    scope       text    NOT NULL,
    key         text    NOT NULL,
    failures    bigint  NOT NULL CHECK (failures >= 0),
    first_at    bigint  NOT NULL,
    last_at     bigint  NOT NULL,
    expires_at  bigint  NOT NULL,
    CONSTRAINT throttles_pkey PRIMARY KEY (scope, key)
);
CREATE INDEX throttles_expires_at ON throttles (expires_at);
