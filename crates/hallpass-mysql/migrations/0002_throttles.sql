-- hallpass schema, version 2: login throttling counters (MariaDB 10.6+ / MySQL 8.0.16+).
--
-- One row per (scope, key), such as `acct:<user id>` or `ip:<address>`: the consecutive
-- failures counted since `first_at`, the latest at `last_at`; the row is forgotten at
-- `expires_at` (the sweeper deletes it, and a hit after it starts the count again).
-- `throttle_key` (KEY is reserved here) is VARBINARY, compared byte for byte; the service
-- keeps keys within 200 bytes. Idempotent, like every migration of this dialect.
CREATE TABLE IF NOT EXISTS throttles (
    scope         VARCHAR(63)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    throttle_key  VARBINARY(255) NOT NULL,
    failures      BIGINT         NOT NULL,
    first_at      BIGINT         NOT NULL,
    last_at       BIGINT         NOT NULL,
    expires_at    BIGINT         NOT NULL,
    PRIMARY KEY (scope, throttle_key),
    KEY throttles_expires_at (expires_at),
    CONSTRAINT throttles_failures CHECK (failures >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;
