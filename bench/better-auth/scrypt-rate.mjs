// The raw password-hash rate beneath Better Auth's sign-in: node's crypto.scrypt with the
// parameters Better Auth passes it (node_modules/@better-auth/utils/dist/password.node.mjs:
// N=16384, r=16, p=1, dkLen=64, the password NFKC-normalised, a 16-byte hex salt), the
// same libuv thread pool as the server (UV_THREADPOOL_SIZE, default 4), CONCURRENCY
// verifications in flight for SECONDS. Before timing, it checks that a hash made by Better
// Auth's own `hashPassword` verifies with these parameters, so they cannot drift unseen.
//
//   node scrypt-rate.mjs SECONDS [CONCURRENCY]   -> one JSON line
import { scrypt } from "node:crypto";
import { hashPassword } from "better-auth/crypto";

const SECONDS = Number(process.argv[2] || 5), CONC = Number(process.argv[3] || 16);
const P = { N: 16384, r: 16, p: 1, dkLen: 64 };
const PASSWORD = "Tr0ub4dor&3-horse-staple";

const derive = (password, salt) => new Promise((resolve, reject) =>
  scrypt(password.normalize("NFKC"), salt, P.dkLen, { N: P.N, r: P.r, p: P.p, maxmem: 128 * P.N * P.r * 2 },
    (e, k) => (e ? reject(e) : resolve(k))));
const verify = async (hash, password) => {
  const [salt, key] = hash.split(":");
  return (await derive(password, salt)).toString("hex") === key;
};

const stored = await hashPassword(PASSWORD);
if (!(await verify(stored, PASSWORD))) {
  console.error("scrypt-rate: Better Auth's hash does not verify with N=16384 r=16 p=1 dkLen=64: its parameters changed");
  process.exit(1);
}

let done = 0;
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
const deadline = Date.now() + SECONDS * 1000;
async function worker() {
  while (Date.now() < deadline) {
    if (!(await verify(stored, PASSWORD))) throw new Error("verification failed");
    done++;
  }
}
await Promise.all(Array.from({ length: CONC }, worker));
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
const cpuSecs = (cpu.user + cpu.system) / 1e6;
console.log(JSON.stringify({
  verifications: done, seconds: secs, per_second: done / secs, cpu_seconds: cpuSecs,
  per_cpu_second: done / cpuSecs, setup_in_cpu: false, concurrency: CONC, threads: Number(process.env.UV_THREADPOOL_SIZE || 4), ...P,
}));
