// sleepless-sessions' get_session and authenticate, driven from Node as its users call
// them, for the side-by-side figure of bench/run.sh. The schema and rows are made by
// run.sh (the package ships no schema); this only loads.
//
//   node bench.js DB SECONDS CONCURRENCY USERS SESSIONS [get|auth|both]
//
// Users are `u<i>` / `u<i>@bench.invalid` with password `Tr0ub4dor&3-horse-staple`;
// session ids are sha1('sid' + i). Prints one JSON line per figure.
"use strict";
const crypto = require("crypto");
const sessions = require("sleepless-sessions");

const [db, seconds, concurrency, users, nsessions, which = "both"] = process.argv.slice(2);
const SECONDS = Number(seconds || 10), CONC = Number(concurrency || 64);
const NUSERS = Number(users || 1000), NSESS = Number(nsessions || 1000);
const PASSWORD = "Tr0ub4dor&3-horse-staple";
const sha1 = (s) => crypto.createHash("sha1").update(s).digest("hex");

function run(name, call, check) {
  return new Promise((resolve) => {
    const deadline = Date.now() + SECONDS * 1000;
    let done = 0, bad = 0, inflight = 0, i = 0;
    const lat = [];
    const start = process.hrtime.bigint();
    const next = () => {
      if (Date.now() >= deadline) {
        if (--inflight === 0) {
          const secs = Number(process.hrtime.bigint() - start) / 1e9;
          lat.sort((a, b) => a - b);
          const q = (p) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] || 0;
          resolve({ name, calls: done, failed: bad, seconds: secs, per_second: done / secs,
                    p50_ms: q(0.5), p99_ms: q(0.99), concurrency: CONC });
        }
        return;
      }
      const k = i++;
      const t = process.hrtime.bigint();
      call(k, (r) => {
        lat.push(Number(process.hrtime.bigint() - t) / 1e6);
        if (check(r)) done++; else bad++;
        next();
      }, (e) => { bad++; console.error(name, e); next(); });
    };
    for (let c = 0; c < CONC; c++) { inflight++; next(); }
  });
}

sessions.mariadb.create({ host: "127.0.0.1", port: 3306, user: "root", password: "", database: db }, async (api) => {
  const out = [];
  if (which !== "auth") out.push(await run("sleepless_get_session",
    (k, ok, fail) => api.get_session(sha1("sid" + (k % NSESS)), ok, fail),
    (r) => r && r.session && r.session.user));
  if (which !== "get") out.push(await run("sleepless_authenticate",
    (k, ok, fail) => api.authenticate("u" + (k % NUSERS), PASSWORD, ok, fail),
    (r) => r && r.session && !r.error));
  for (const o of out) console.log(JSON.stringify(o));
  api.destroy();
}, (e) => { console.error("connect failed", e); process.exit(1); });
