// sleepless-sessions behind a minimal node:http server, the way a backend would wrap it,
// so that bench/run.sh measures it with wrk exactly like hallpass (same connections, same
// slices). One connection to MariaDB, made by the package's own `create` (its `db`/`mysql`
// driver); nothing cached in front of it.
//
//   node server.js DB
//
//   GET  /session   header X-Session-Id: SID -> 200 {"session":{...}} (its get_session),
//                   401 {} when it finds no session
//   POST /sessions  {"login":..., "password":...} -> 200 {"session":{...}} (its
//                   authenticate), 401 {"error":...} when refused
//   500 when the package calls its fail callback (a database error).
//
// Listens on 127.0.0.1, a free port, and logs {"addr":"127.0.0.1:PORT"} on stderr (the line
// bench/lib.sh's wait_addr reads).
"use strict";
const http = require("http");
const sessions = require("sleepless-sessions");

const db = process.argv[2];
if (!db) {
  console.error("usage: node server.js DB");
  process.exit(2);
}

function send(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

sessions.mariadb.create({ host: "127.0.0.1", port: 3306, user: "root", password: "", database: db }, (api) => {
  const fail = (res) => (e) => send(res, 500, { error: String(e && e.message ? e.message : e) });
  const server = http.createServer((req, res) => {
    if (req.method === "GET" && req.url === "/session") {
      api.get_session(req.headers["x-session-id"] || "",
        (r) => (r && r.session ? send(res, 200, r) : send(res, 401, {})), fail(res));
    } else if (req.method === "POST" && req.url === "/sessions") {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        let b;
        try { b = JSON.parse(Buffer.concat(chunks).toString("utf8")); } catch { return send(res, 400, { error: "bad json" }); }
        api.authenticate(String(b.login || ""), String(b.password || ""),
          (r) => (r && r.session && !r.error ? send(res, 200, r) : send(res, 401, { error: r && r.error })), fail(res));
      });
    } else {
      send(res, 404, {});
    }
  });
  server.listen(0, "127.0.0.1", () => {
    console.error(JSON.stringify({ addr: `127.0.0.1:${server.address().port}` }));
  });
  for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => { api.destroy(); process.exit(0); });
}, (e) => { console.error("connect failed", e); process.exit(1); });
