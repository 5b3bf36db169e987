-- hallpass schema, version 7: the outbox (see hallpass-core's `outbox` module).
--
-- One row per delivery (a mail now; webhooks later), written in the same transaction as
-- the change that causes it and sent by a worker that claims it with a lease
-- (`FOR UPDATE SKIP LOCKED`, MariaDB 10.6+, so processes sharing the database never take
-- one row twice). `kind` names the deliverer, `lane` its target (the recipient's domain for
-- mail), `payload` is the deliverer's JSON as text (it may hold a one-time code until the
-- row is `sent` or `failed`, when it is scrubbed). `state` is `queued`, `sending`,
-- `in_doubt`, `sent` or `failed`. `user_id` is not a foreign key: a delivery outlives the
-- account it was about. Idempotent, like every migration of this dialect.
CREATE TABLE IF NOT EXISTS outbox (
    id              CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    scope           VARCHAR(63)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    kind            VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    lane            VARCHAR(255) NOT NULL,
    user_id         CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin,
    payload         LONGTEXT     NOT NULL,
    state           VARCHAR(16)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    attempts        INT          NOT NULL DEFAULT 0,
    next_attempt_at BIGINT       NOT NULL,
    lease_until     BIGINT,
    lease_owner     VARCHAR(255),
    last_error      TEXT,
    created_at      BIGINT       NOT NULL,
    sent_at         BIGINT,
    PRIMARY KEY (id),
    KEY outbox_due (kind, state, next_attempt_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;
