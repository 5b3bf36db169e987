// The session cache of @hallpass/client: answering from memory, refusing a session ended
// through ANOTHER server process within 100 ms (delays printed), checks going to the server
// while the stream is down, and the Express-style middleware over plain node:http.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { HallpassClient, Sessions, hallpassMiddleware } from "@hallpass/client";
import { database, PASSWORD } from "./helpers.mjs";

const LIMIT_MS = 100;
let db, a, b, onA, onB;
before(async () => {
  db = await database();
  [a, b] = await Promise.all([db.serve(), db.serve()]);
  onA = new HallpassClient({ baseUrl: a.base, apiKey: db.key });
  onB = new HallpassClient({ baseUrl: b.base, apiKey: db.key });
  await onA.register({ username: "ada", password: PASSWORD });
  await onA.register({ username: "bob", password: PASSWORD });
});
after(() => db?.close());

const login = async (hp, name) => (await hp.login({ login: name, password: PASSWORD })).token;

async function refusedWithin(sessions, token, started, what) {
  for (;;) {
    const took = performance.now() - started;
    if (sessions.cached(token) === null) {
      assert.ok(took <= LIMIT_MS, `${what}: refused after ${took.toFixed(1)} ms`);
      return took;
    }
    assert.ok(took <= LIMIT_MS, `${what}: still answered from memory after ${LIMIT_MS} ms`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

test("answers from memory, refuses what another process ended within 100 ms", async () => {
  const sessions = new Sessions(onA);
  try {
    assert.ok(await sessions.waitLive(10_000), "the change stream did not connect");
    const t = await login(onA, "ada");
    const first = await sessions.check(t);
    const before = { ...sessions.stats };
    for (let i = 0; i < 100; i++) assert.equal((await sessions.check(t)).session.id, first.session.id);
    assert.equal(sessions.stats.hits - before.hits, 100);
    assert.equal(sessions.stats.misses, before.misses);

    const delays = [];
    for (let i = 0; i < 10; i++) {
      const t = await login(onA, "ada");
      await sessions.check(t);
      assert.ok(sessions.cached(t));
      await onB.endSession(t);
      const started = performance.now();
      delays.push(await refusedWithin(sessions, t, started, `logout #${i} on B`));
      await assert.rejects(sessions.check(t), (e) => e.code === "session_invalid");
    }
    const t1 = await login(onA, "bob");
    await sessions.check(t1);
    await onB.updateUser("bob", { active: false });
    delays.push(await refusedWithin(sessions, t1, performance.now(), "deactivation on B"));
    await assert.rejects(sessions.check(t1), (e) => e.code === "session_invalid");
    console.error(`node: revocation through another process refused after ${delays.map((d) => d.toFixed(1)).join(", ")} ms`);

    // Down: memory answers nothing, checks ask the server.
    const t2 = await login(onA, "ada");
    await sessions.check(t2);
    assert.ok(sessions.cached(t2));
    a.stop();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(sessions.isLive(), false);
    assert.equal(sessions.cached(t2), null, "memory answered while the stream was down");
  } finally {
    await sessions.close();
  }
});

test("the middleware reads header, bearer and cookie; 401 without a session", async () => {
  const sessions = new Sessions(onB);
  const mw = hallpassMiddleware(sessions, { cookie: "sid" });
  const app = createServer((req, res) => mw(req, res, () => res.end(req.hallpass.user.username)));
  await new Promise((r) => app.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${app.address().port}/`;
  try {
    const t = await login(onB, "ada");
    for (const headers of [{ "x-session-token": t }, { authorization: `Bearer ${t}` }, { cookie: `theme=dark; sid=${t}` }]) {
      const res = await fetch(url, { headers });
      assert.equal(res.status, 200);
      assert.equal(await res.text(), "ada");
    }
    const none = await fetch(url);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get("content-type"), "application/problem+json");
    assert.equal((await none.json()).code, "session_invalid");
    // Ended behind the app's back: the change stream tells the cache within the limit.
    await onB.endSession(t);
    const ended = performance.now();
    while ((await fetch(url, { headers: { authorization: `Bearer ${t}` } })).status !== 401) {
      assert.ok(performance.now() - ended <= LIMIT_MS, `still let in after ${LIMIT_MS} ms`);
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    app.close();
    await sessions.close();
  }
});
