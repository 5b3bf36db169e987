// The change stream of @hallpass/client's cache cut (by a TCP proxy in this test) and
// resumed with Last-Event-ID: a revocation made while it was down is not missed and the
// cache is kept (no clear); while down, memory answers nothing and checks ask the server.
// Then `reset`: the server behind the stream replaced by a new process, which cannot resume
// the old one's ids, makes the cache drop everything.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, connect } from "node:net";
import { HallpassClient, Sessions } from "@hallpass/client";
import { database, PASSWORD } from "./helpers.mjs";

let db;
after(() => db?.close());

/** A proxy whose change-stream connections can be cut and refused; `upstream` can change. */
async function proxy(upstream) {
  const p = { upstream, blocked: false, streams: new Set() };
  const server = createServer((conn) => {
    const [host, port] = p.upstream.replace("http://", "").split(":");
    const up = connect(Number(port), host);
    conn.on("data", (chunk) => {
      // Any request on the connection may be the stream's (fetch reuses connections).
      if (chunk.subarray(0, 15).toString() === "GET /v1/changes") {
        if (p.blocked) { conn.destroy(); up.destroy(); return; }
        p.streams.add(conn);
      }
      up.write(chunk);
    });
    up.on("data", (chunk) => conn.write(chunk));
    const close = () => { conn.destroy(); up.destroy(); p.streams.delete(conn); };
    conn.on("close", close); up.on("close", close);
    conn.on("error", close); up.on("error", close);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  p.base = `http://127.0.0.1:${server.address().port}`;
  p.cut = () => { for (const c of p.streams) c.destroy(); p.streams.clear(); };
  p.close = () => server.close();
  return p;
}

async function until(limitMs, what, f) {
  const end = Date.now() + limitMs;
  while (!f()) {
    assert.ok(Date.now() < end, `${what}: not within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("cut, resumed without a missed revocation, then reset", async () => {
  db = await database();
  const a = await db.serve();
  const px = await proxy(a.base);
  const onA = new HallpassClient({ baseUrl: a.base, apiKey: db.key });
  const sessions = new Sessions(new HallpassClient({ baseUrl: px.base, apiKey: db.key }), { reconnectDelayMs: 20 });
  try {
    assert.ok(await sessions.waitLive(10_000));
    await onA.register({ username: "ada", password: PASSWORD });
    const login = async () => (await onA.login({ login: "ada", password: PASSWORD })).token;

    // One event seen, so there is an id to resume from.
    const t0 = await login();
    await sessions.check(t0);
    await onA.endSession(t0);
    await until(2000, "first event", () => sessions.cached(t0) === null);

    const keep = await login();
    const doomed = await login();
    await sessions.check(keep);
    await sessions.check(doomed);
    const clears = sessions.stats.clears;

    px.blocked = true;
    px.cut();
    await until(2000, "stream seen down", () => !sessions.isLive());
    assert.equal(sessions.cached(keep), null, "memory answered while the stream was down");
    const misses = sessions.stats.misses;
    await sessions.check(keep);
    assert.equal(sessions.stats.misses, misses + 1, "a check while down asks the server");

    await onA.endSession(doomed);
    await new Promise((r) => setTimeout(r, 200));

    px.blocked = false;
    assert.ok(await sessions.waitLive(10_000), "the stream did not come back");
    assert.equal(sessions.cached(doomed), null, "the revocation made while the stream was down was missed");
    await assert.rejects(sessions.check(doomed), (e) => e.code === "session_invalid");
    assert.ok(sessions.cached(keep), "a successful resume kept the cache");
    assert.equal(sessions.stats.clears, clears, "a successful resume does not clear");

    const c = await db.serve();
    px.upstream = c.base;
    px.cut();
    await until(10_000, "reset after reconnecting elsewhere", () => sessions.stats.clears > clears);
    assert.ok(await sessions.waitLive(10_000));
    assert.equal(sessions.cached(keep), null, "reset dropped the cache");
    assert.equal((await sessions.check(keep)).session.user_id, (await onA.getSession(keep)).user.id);
  } finally {
    await sessions.close();
    px.close();
  }
});
