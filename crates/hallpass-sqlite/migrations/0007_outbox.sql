-- hallpass schema, version 7: the outbox (see hallpass-core's `outbox` module).
--
-- One row per delivery (a mail now; webhooks later), written in the same transaction as
-- the change that causes it and sent by a worker that claims it with a lease. `kind` names
-- the deliverer, `lane` its target (the recipient's domain for mail), `payload` is the
-- deliverer's JSON (it may hold a one-time code until the row is `sent` or `failed`, when
-- it is scrubbed). `state` is `queued`, `sending`, `in_doubt`, `sent` or `failed`.
-- `user_id` is not a foreign key: a delivery outlives the account it was about.
CREATE TABLE outbox (
    id              TEXT    NOT NULL PRIMARY KEY,
    scope           TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    lane            TEXT    NOT NULL,
    user_id         TEXT,
    payload         TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    lease_owner     TEXT,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
) STRICT;

-- What a claim reads: due rows of a kind by state and time.
CREATE INDEX outbox_due ON outbox (kind, state, next_attempt_at);
