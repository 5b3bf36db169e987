-- hallpass schema, version 4: `codes.user_id` may be NULL.
--
-- A reset-code request for a login that names nobody (or a user over the request limit)
-- stores a decoy: a code row with no user, written by the same upsert a real code is, so
-- both requests run the same statements and take the same time. Nobody knows a decoy's
-- code and every reader asks for `user_id IS NOT NULL`, so it is never redeemed; it
-- expires and is swept like any other code. A NULL foreign key is not checked, and NULLs
-- are distinct in `codes_one_per_kind`, so decoys never conflict with anything.
ALTER TABLE codes ALTER COLUMN user_id DROP NOT NULL;
