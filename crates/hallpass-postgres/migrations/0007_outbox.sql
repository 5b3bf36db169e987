-- hallpass schema, version 7: the outbox (see hallpass-core's `outbox` module).
--
-- One row per delivery (a mail now; webhooks later), written in the same transaction as
-- the change that causes it and sent by a worker that claims it with a lease
-- (`FOR UPDATE SKIP LOCKED`, so processes sharing the database never take one row twice).
-- `kind` names the deliverer, `lane` its target (the recipient's domain for mail),
-- `payload` is the deliverer's JSON (it may hold a one-time code until the row is `sent`
-- or `failed`, when it is scrubbed). `state` is `queued`, `sending`, `in_doubt`, `sent`
-- or `failed`. `user_id` is not a foreign key: a delivery outlives the account it was about.
CREATE TABLE outbox (
    id              uuid    NOT NULL,
    scope           text    NOT NULL,
    kind            text    NOT NULL,
    lane            text    NOT NULL,
    user_id         uuid,
    payload         jsonb   NOT NULL,
    state           text    NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at bigint  NOT NULL,
    lease_until     bigint,
    lease_owner     text,
    last_error      text,
    created_at      bigint  NOT NULL,
    sent_at         bigint,
    CONSTRAINT outbox_pkey PRIMARY KEY (id)
);

-- What a claim reads: due rows of a kind by state and time.
CREATE INDEX outbox_due ON outbox (kind, state, next_attempt_at);
