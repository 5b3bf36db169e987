-- hallpass schema, version 5: the change log that tells other processes what their caches
-- must drop (MariaDB 10.6+ / MySQL 8.0.16+). MariaDB has no LISTEN/NOTIFY, so every change
-- a process makes (`Store::publish_change`) is a row here, and every process that caches
-- polls the rows above the last id it has read (see src/changes.rs).
--
-- `payload` is `Change::to_wire` (`u:<uuid>`, `s:<64 hex>`, `k`, `*`: at most 66 ASCII
-- characters). `at` is the server's clock (every hallpass connection runs at +00:00), read
-- only to prune rows older than a few minutes; the index on it keeps that prune from
-- scanning the table. Rows are never updated. Idempotent, like every migration of this
-- dialect.
CREATE TABLE IF NOT EXISTS hallpass_changes (
    id       BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    payload  VARCHAR(128)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    at       DATETIME(6)     NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    KEY hallpass_changes_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;
