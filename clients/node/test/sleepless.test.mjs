// @hallpass/client/sleepless: sleepless-sessions' own test file (test/fixtures/, its
// import changed) runs unchanged against a live hallpass; then every function with its
// callback shapes, and where hallpass is deliberately stricter.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { database, PASSWORD, NEW_PASSWORD } from "./helpers.mjs";

const require = createRequire(import.meta.url);
const sleepless = require("@hallpass/client/sleepless");

// sleepless-sessions accepted any 8 characters ("TEst1234" in its test); hallpass refuses
// guessable passwords by default, so this server is configured as lenient as it allows.
let db, server;
before(async () => {
  db = await database({ HALLPASS_MIN_PASSWORD_SCORE: "0" });
  server = await db.serve();
});
after(() => db?.close());

const call = (fn, ...args) => new Promise((resolve, reject) => fn(...args, resolve, reject));

test("sleepless-sessions' own test file runs unchanged but for its import", async () => {
  const file = fileURLToPath(new URL("./fixtures/sleepless-test.js", import.meta.url));
  const globals = fileURLToPath(new URL("./fixtures/globals.cjs", import.meta.url));
  const { stdout } = await new Promise((resolve, reject) =>
    execFile(process.execPath, ["--require", globals, file], {
      env: { ...process.env, HALLPASS_URL: server.base, HALLPASS_API_KEY: db.key },
      timeout: 30_000,
    }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stdout}\n${stderr}`)) : resolve({ stdout, stderr }))),
  );
  assert.match(stdout, /All tests done/);
});

test("create(opts, done, fail) and every function with sleepless's shapes", async () => {
  const api = await new Promise((resolve, reject) => sleepless.create({ url: server.base, api_key: db.key, host: "ignored" }, resolve, reject));
  try {
    assert.deepEqual(await call(api.register, "ann@example.com", "ann", PASSWORD), { user_id: "ann" });
    assert.match((await call(api.register, "x@example.com", "ann", PASSWORD)).error, /already registered/);
    assert.match((await call(api.register, "ann@example.com", "ann2", PASSWORD)).error, /Email already in use/);
    assert.match((await call(api.register, "y@example.com", "bad name!", PASSWORD)).error, /disallowed characters/);
    assert.match((await call(api.register, "y@example.com", "shorty", "short")).error, /too short/);

    const { user } = await call(api.get_user, "ann@example.com");
    assert.equal(user.user_id, "ann");
    assert.equal(user.email, "ann@example.com");
    assert.ok(user.created instanceof Date);
    assert.deepEqual(await call(api.get_user, "nobody"), {});

    const { session } = await call(api.authenticate, "ann", PASSWORD);
    assert.match(session.sid, /\S{20,}/);
    assert.ok(session.expires instanceof Date && session.expires > new Date());
    assert.deepEqual(session.user, { user_id: "ann", email: "ann@example.com" });
    // Wrong password and unknown user: the same answer, and the password is not echoed.
    const wrong = await call(api.authenticate, "ann", "not the password");
    const unknown = await call(api.authenticate, "nobody", "not the password");
    assert.deepEqual(wrong, { error: "Denied" });
    assert.deepEqual(unknown, { error: "Denied" });

    assert.equal((await call(api.get_session, session.sid)).session.sid, session.sid);
    assert.equal((await call(api.freshen_session, session.sid)).session.user.user_id, "ann");
    assert.deepEqual(await call(api.end_session, session.sid), {});
    assert.deepEqual(await call(api.get_session, session.sid), {});
    assert.deepEqual(await call(api.freshen_session, session.sid), {});
    assert.deepEqual(await call(api.get_session, ""), {});

    const { code } = await call(api.reset_password_code, "ann");
    assert.ok(code);
    assert.deepEqual(await call(api.reset_password, code, NEW_PASSWORD), { user_id: "ann" });
    // Single use, and sleepless's "" code takes over nothing.
    assert.deepEqual(await call(api.reset_password, code, PASSWORD), { error: "Denied" });
    assert.deepEqual(await call(api.reset_password, "", PASSWORD), { error: "Denied" });
    assert.match((await call(api.reset_password_code, "nobody")).error, /User not found/);
    assert.ok((await call(api.authenticate, "ann", NEW_PASSWORD)).session);

    // unregister checks the password (sleepless's MariaDB module did not).
    assert.deepEqual(await call(api.unregister, "ann", PASSWORD), { error: "Denied" });
    assert.deepEqual(await call(api.unregister, "ann", NEW_PASSWORD), {});
    assert.deepEqual(await call(api.get_user, "ann"), {});
  } finally {
    api.destroy();
  }
});

test("create calls fail when hallpass does not answer", async () => {
  const err = await new Promise((resolve, reject) => sleepless.create({ url: "http://127.0.0.1:9", api_key: "x" }, () => reject(new Error("done called")), resolve));
  assert.ok(err instanceof Error);
});
