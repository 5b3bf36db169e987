-- hallpass schema, version 2: login throttling counters.
--
-- One row per (scope, key), such as `acct:<user id>` or `ip:<address>`: the consecutive
-- failures counted since `first_at`, the latest at `last_at`; the row is forgotten at
-- `expires_at` (the sweeper deletes it, and a hit after it starts the count again).
CREATE TABLE throttles (
    scope       TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    failures    INTEGER NOT NULL CHECK (failures >= 0),
    first_at    INTEGER NOT NULL,
    last_at     INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX throttles_expires_at ON throttles (expires_at);
