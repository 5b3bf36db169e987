// Starting the real `hallpass` binary for the tests: a fresh database (SQLite in a temporary
// directory; or, with HALLPASS_TEST_BACKEND=postgres, a PostgreSQL database of a unique
// name on 127.0.0.1:5432, made with psql and dropped after), port 0, JSON logs read for the
// bound address, an API key made by the CLI. The binary is $HALLPASS_BIN, else
// target/debug/hallpass of this repository (built by scripts/node-client-test.sh).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const BIN = process.env.HALLPASS_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(root, "target"), "debug", "hallpass");

export const PASSWORD = "quilted marsupial drumbeat 42";
export const NEW_PASSWORD = "verdant oboe lantern 77";

function env(url, extra) {
  return {
    PATH: process.env.PATH,
    HALLPASS_DATABASE_URL: url,
    HALLPASS_LISTEN: "127.0.0.1:0",
    HALLPASS_LOG_FORMAT: "json",
    HALLPASS_ARGON2_MEMORY_KIB: "256",
    HALLPASS_ARGON2_ITERATIONS: "1",
    HALLPASS_SECRET_KEY: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    ...extra,
  };
}

/** A database with a key of scope `app`; `serve()` starts a process on it. */
export async function database(extra = {}) {
  if (!existsSync(BIN)) throw new Error(`no hallpass binary at ${BIN}: run cargo build -p hallpass-server`);
  const dir = mkdtempSync(join(tmpdir(), "hallpass-node-"));
  const backend = process.env.HALLPASS_TEST_BACKEND ?? "sqlite";
  let url = `sqlite://${join(dir, "hallpass.db")}`;
  let drop = () => {};
  if (backend === "postgres") {
    const name = `hallpass_node_${randomBytes(6).toString("hex")}`;
    const psql = (sql) =>
      execFileSync("psql", ["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql], { stdio: ["ignore", "ignore", "pipe"] });
    psql(`CREATE DATABASE ${name}`);
    url = `postgres://postgres@127.0.0.1:5432/${name}`;
    drop = () => psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } else if (backend !== "sqlite") {
    throw new Error(`HALLPASS_TEST_BACKEND=${backend}: sqlite or postgres`);
  }
  const out = execFileSync(BIN, ["keys", "create", "--scope", "app"], { env: env(url, extra), encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const key = out.trim().split("\n").pop();
  const servers = [];
  return {
    url,
    key,
    async serve() {
      const child = spawn(BIN, ["serve"], { env: env(url, extra), stdio: ["ignore", "ignore", "pipe"] });
      servers.push(child);
      const lines = createInterface({ input: child.stderr });
      const base = await new Promise((resolve, reject) => {
        const seen = [];
        const t = setTimeout(() => reject(new Error("hallpass did not start:\n" + seen.join("\n"))), 30_000);
        lines.on("line", (line) => {
          try {
            const v = JSON.parse(line);
            if (v.message === "hallpass listening" && v.addr) {
              clearTimeout(t);
              resolve(`http://${v.addr}`);
              return;
            }
          } catch { /* not JSON */ }
          seen.push(line);
        });
        child.on("exit", (code) => { clearTimeout(t); reject(new Error(`hallpass exited (${code}):\n` + seen.join("\n"))); });
      });
      return { base, child, stop: () => child.kill("SIGKILL") };
    },
    close() {
      for (const c of servers) c.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      drop();
    },
  };
}
