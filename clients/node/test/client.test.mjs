// @hallpass/client against the real binary: every method with its typed answers and
// errors, the operation list against docs/openapi.json, the SSE parser.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createHmac } from "node:crypto";
import { HallpassClient, HallpassError, OPERATIONS, SseParser, PROBLEM_CODES } from "@hallpass/client";
import { database, PASSWORD, NEW_PASSWORD } from "./helpers.mjs";

let db, server, hp;
before(async () => {
  db = await database();
  server = await db.serve();
  hp = new HallpassClient({ baseUrl: server.base, apiKey: db.key });
});
after(() => db?.close());

async function refused(promise, code) {
  await assert.rejects(promise, (e) => e instanceof HallpassError && e.code === code, `expected ${code}`);
}

function totpNow(secretB32) {
  let bits = 0, acc = 0n;
  const bytes = [];
  for (const c of secretB32.replace(/=+$/, "")) {
    const v = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".indexOf(c);
    acc = (acc << 5n) | BigInt(v);
    bits += 5;
    if (bits >= 8) { bits -= 8; bytes.push(Number((acc >> BigInt(bits)) & 0xffn)); }
  }
  const step = Buffer.alloc(8);
  step.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30)));
  const mac = createHmac("sha1", Buffer.from(bytes)).update(step).digest();
  const o = mac[19] & 0x0f;
  return String((mac.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

test("every operation of docs/openapi.json has a client method", () => {
  const spec = JSON.parse(readFileSync(new URL("../../../docs/openapi.json", import.meta.url), "utf8"));
  const inSpec = [];
  for (const [p, ops] of Object.entries(spec.paths)) for (const [m, op] of Object.entries(ops)) if (op.responses) inSpec.push(`${m.toUpperCase()} ${p}`);
  const missing = inSpec.filter((k) => !(k in OPERATIONS));
  assert.deepEqual(missing, [], "operations without a client method (add one to src/client.ts and OPERATIONS)");
  assert.deepEqual(Object.keys(OPERATIONS).filter((k) => !inSpec.includes(k)), [], "methods for operations the spec no longer has");
  for (const name of Object.values(OPERATIONS)) assert.equal(typeof HallpassClient.prototype[name], "function", name);
  const described = spec.components.schemas.Problem.properties.code.description;
  for (const code of described.split("`").filter((_, i) => i % 2)) assert.ok(PROBLEM_CODES.includes(code), code);
});

test("the SSE parser reads split chunks and every line ending", () => {
  const p = new SseParser();
  const text = ": c\r\nevent: session.ended\r\nid: 1-5\r\ndata: {\"a\":1}\r\n\r\nevent:ping\ndata:{}\n\ndata: x\rdata: y\r\r\n";
  const out = [];
  for (let i = 0; i < text.length; i += 3) out.push(...p.feed(text.slice(i, i + 3)));
  assert.deepEqual(out, [
    { event: "session.ended", data: "{\"a\":1}", id: "1-5" },
    { event: "ping", data: "{}", id: null },
    { event: "message", data: "x\ny", id: null },
  ]);
});

test("every method against a live server", async () => {
  assert.equal((await hp.healthz()).status, "ok");
  assert.equal((await hp.readyz()).status, "ok");
  assert.match(await hp.metrics(), /# TYPE/);
  assert.ok((await hp.openapi()).paths["/v1/session"]);
  await refused(new HallpassClient({ baseUrl: server.base, apiKey: "hpk_wrong" }).getUser("x"), "unauthorized");

  const ada = await hp.register({ username: "ada", email: "ada@example.com", password: PASSWORD });
  assert.equal((await hp.getUser("ada@example.com")).id, ada.id);
  await refused(hp.register({ username: "ADA", password: PASSWORD }), "username_taken");
  await refused(hp.register({ username: "weak", password: "password" }), "weak_password");
  assert.equal((await hp.listUsers({ query: "ada", limit: 10 })).users.length, 1);
  const changed = await hp.updateUser(ada.id, { group: "staff", extra: { plan: "pro" } });
  assert.equal(changed.group, "staff");
  await refused(hp.getUser("no/such?user#"), "user_not_found");

  const stream = await hp.changes();
  const one = await hp.login({ login: "ada", password: PASSWORD });
  assert.equal(one.kind, "session");
  const me = await hp.getSession(one.token);
  assert.equal(me.user.id, ada.id);
  assert.ok((await hp.freshenSession(one.token)).session.expires_at >= one.session.expires_at);
  assert.equal((await hp.patchSessionData(one.token, { cart: 3 })).session.data.cart, 3);
  const two = await hp.login({ email: "ada@example.com", password: PASSWORD });
  assert.equal((await hp.listUserSessions("ada")).sessions.length, 2);
  await hp.endOtherSessions(two.token);
  await refused(hp.getSession(one.token), "session_invalid");
  const three = await hp.login({ login: "ada", password: PASSWORD });
  await hp.endUserSession("ada", three.session.id);
  await refused(hp.getSession(three.token), "session_invalid");
  await hp.endUserSessions("ada");
  assert.equal((await hp.listUserSessions("ada")).sessions.length, 0);
  const four = await hp.login({ login: "ada", password: PASSWORD });
  await hp.endSession(four.token);
  await hp.endSession(four.token);
  await refused(hp.login({ login: "ada", password: "wrong wrong wrong" }), "invalid_credentials");
  for (;;) {
    const ev = await stream.next();
    assert.ok(ev, "the stream ended");
    if (ev.change.type === "session.ended" && ev.change.session_id === four.session.id) {
      assert.ok(ev.id);
      break;
    }
  }
  await stream.close();

  const history = await hp.loginHistory("ada", { limit: 2 });
  assert.equal(history.events.length, 2);
  assert.ok(history.next_cursor);
  const stats = await hp.loginStats({ bucket: "day" });
  assert.ok(stats.buckets.reduce((n, b) => n + b.logins, 0) >= 4);

  await hp.setPassword("ada", NEW_PASSWORD);
  const reset = await hp.createResetCode("ada");
  assert.equal(reset.user_id, ada.id);
  assert.equal((await hp.redeemResetCode(reset.code, PASSWORD)).user_id, ada.id);
  await refused(hp.redeemResetCode(reset.code, PASSWORD), "invalid_code");
  await refused(hp.createResetCode("ada", { sendEmail: true }), "mail_not_configured");
  await hp.sendEmailCode("ada@example.com").catch((e) => assert.equal(e.code, "mail_not_configured"));
  await refused(hp.sendConfirmation("ada"), "mail_not_configured");
  await refused(hp.redeemConfirmation("nope"), "invalid_code");

  const linked = await hp.linkProvider("ada", "github", { client_id: "gh-1", access_token: "at", refresh_token: "rt", expires_in: 3600 });
  assert.equal(linked.access_token_expired, false);
  assert.equal(linked.refresh_token, "rt");
  assert.equal((await hp.updateProvider("ada", "github", { access_token_expiry: 1 })).access_token_expired, true);
  assert.equal((await hp.getProvider("ada", "github")).client_id, "gh-1");
  assert.equal((await hp.listProviders("ada")).providers.length, 1);
  const viaProvider = await hp.login({ provider: "github", client_id: "gh-1" });
  assert.equal(viaProvider.login.oauth.provider, "github");
  await hp.unlinkProvider("ada", "github");
  await refused(hp.getProvider("ada", "github"), "provider_not_linked");

  await refused(hp.oidcStart("google", "https://app.example/done"), "provider_unknown");
  await assert.rejects(hp.oidcCallback("google", { state: "nope", code: "x" }), HallpassError);
  await refused(hp.oidcExchange({ code: "nope" }), "invalid_code");

  const session = await hp.login({ login: "ada", password: PASSWORD });
  const enrolment = await hp.enrolTotp("ada");
  assert.match(enrolment.otpauth_uri, /^otpauth:\/\/totp\//);
  assert.equal((await hp.confirmTotp("ada", totpNow(enrolment.secret), session.token)).recovery_codes.length, 10);
  const codes = await hp.newRecoveryCodes("ada");
  const challenge = await hp.login({ login: "ada", password: PASSWORD });
  assert.equal(challenge.kind, "mfa");
  const answered = await hp.answerMfa({ challenge: challenge.challenge, recovery_code: codes.recovery_codes[0] });
  assert.equal(answered.session.aal, 2);
  await hp.deleteTotp("ada", answered.token);
  await hp.removeMfa("ada");
  assert.equal((await hp.login({ login: "ada", password: PASSWORD })).kind, "session");

  await hp.deleteUser("ada");
  await refused(hp.getUser("ada"), "user_not_found");
});
