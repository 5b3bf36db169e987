// Better Auth as a backend serves it: its own Node handler (`toNodeHandler` from
// `better-auth/node`) on plain `node:http`, SQLite through better-sqlite3, email and
// password sign-in enabled. For the side-by-side figures of bench/run.sh.
//
//   NODE_ENV=production BETTER_AUTH_SECRET=... node server.mjs DB_FILE [options]
//
//   --rate-limit off      rateLimit.enabled = false (default: Better Auth's own, which is
//                         on when NODE_ENV=production)
//   --cookie-cache on     session.cookieCache.enabled = true (default: off, as Better Auth)
//   --cache-max-age S     session.cookieCache.maxAge (default: unset, Better Auth's 300 s)
//
// Every other option is Better Auth's default. The schema is created at start by Better
// Auth's own migration code (`getMigrations` from `better-auth/db/migration`, what its CLI's
// `migrate` runs). Listens on 127.0.0.1, a free port, and logs `{"addr":"127.0.0.1:PORT"}`
// on stderr (the line bench/lib.sh's wait_addr reads), then the settings it runs with.
import http from "node:http";
import Database from "better-sqlite3";
import { betterAuth } from "better-auth";
import { toNodeHandler } from "better-auth/node";
import { getMigrations } from "better-auth/db/migration";

const args = process.argv.slice(2);
const file = args[0];
if (!file || file.startsWith("--")) {
  console.error("usage: node server.mjs DB_FILE [--rate-limit off] [--cookie-cache on] [--cache-max-age S]");
  process.exit(2);
}
const opt = (name) => {
  const i = args.indexOf(name);
  return i > 0 ? args[i + 1] : undefined;
};

const server = http.createServer();
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const addr = `127.0.0.1:${server.address().port}`;

const options = {
  baseURL: `http://${addr}`,
  database: new Database(file),
  emailAndPassword: { enabled: true },
};
const settings = ["emailAndPassword.enabled=true"];
if (opt("--rate-limit") === "off") {
  options.rateLimit = { enabled: false };
  settings.push("rateLimit.enabled=false");
}
if (opt("--cookie-cache") === "on") {
  options.session = { cookieCache: { enabled: true } };
  settings.push("session.cookieCache.enabled=true");
  if (opt("--cache-max-age")) {
    options.session.cookieCache.maxAge = Number(opt("--cache-max-age"));
    settings.push(`session.cookieCache.maxAge=${options.session.cookieCache.maxAge}`);
  }
}

const { runMigrations } = await getMigrations(options);
await runMigrations();
const auth = betterAuth(options);
server.on("request", toNodeHandler(auth));
console.error(JSON.stringify({ addr }));
console.error(JSON.stringify({ node_env: process.env.NODE_ENV ?? null, settings }));
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
