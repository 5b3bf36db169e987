-- hallpass schema, version 6: when each API key was last used, for the admin page.
--
-- Unix milliseconds, NULL until the key is next used. Each process writes it at most once
-- a minute per key, in the background (Hallpass::authenticate_key), so it is a recent
-- figure, not an exact one. No NOTIFY: caches need not drop a key for it.
ALTER TABLE api_keys ADD COLUMN last_used_at bigint;
