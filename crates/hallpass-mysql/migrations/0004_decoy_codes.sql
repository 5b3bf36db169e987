-- hallpass schema, version 4: `codes.user_id` may be NULL.
--
-- A reset-code request for a login that names nobody (or a user over the request limit)
-- stores a decoy: a code row with no user, written by the same DELETE and INSERT a real
-- code is, so both requests run the same statements and take the same time. Nobody knows
-- a decoy's code and every reader asks for `user_id IS NOT NULL`, so it is never
-- redeemed; it expires and is swept like any other code. A NULL foreign key is not
-- checked. Idempotent, like every migration of this dialect.
ALTER TABLE codes MODIFY user_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NULL;
