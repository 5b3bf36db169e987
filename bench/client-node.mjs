// The cached session check through @hallpass/client in Node: Sessions.check of one token
// once the change stream is live and the session is in memory, timed call by call with
// process.hrtime.bigint() (each sample includes that pair and one await). Prints one JSON line.
//
//   node bench/client-node.mjs BASE_URL API_KEY [SAMPLES]
import { createRequire } from "node:module";

const require = createRequire(new URL("../clients/node/package.json", import.meta.url));
const { HallpassClient, Sessions } = require("./dist/index.js");

const [base, key, n = "200000"] = process.argv.slice(2);
const samples = Number(n);
const hp = new HallpassClient({ baseUrl: base, apiKey: key });
const name = `bench-${Date.now()}-${process.pid}`;
const password = "quilted marsupial drumbeat 42";
await hp.register({ username: name, password });
const { token } = await hp.login({ login: name, password });
const sessions = new Sessions(hp);
if (!(await sessions.waitLive(10_000))) throw new Error("the change stream did not connect");
await sessions.check(token);
for (let i = 0; i < 10_000; i++) await sessions.check(token);
const before = { ...sessions.stats };
const times = new Float64Array(samples);
for (let i = 0; i < samples; i++) {
  const t = process.hrtime.bigint();
  await sessions.check(token);
  times[i] = Number(process.hrtime.bigint() - t) / 1000;
}
const syncTimes = new Float64Array(samples);
for (let i = 0; i < samples; i++) {
  const t = process.hrtime.bigint();
  sessions.cached(token);
  syncTimes[i] = Number(process.hrtime.bigint() - t) / 1000;
}
const q = (a, p) => a[Math.min(a.length - 1, Math.floor(a.length * p))];
times.sort();
syncTimes.sort();
console.log(JSON.stringify({
  what: "@hallpass/client Sessions.check, cached (await)",
  node: process.version,
  samples,
  p50_us: q(times, 0.5), p99_us: q(times, 0.99), max_us: times[samples - 1],
  mean_us: times.reduce((a, b) => a + b, 0) / samples,
  cached_sync_p50_us: q(syncTimes, 0.5), cached_sync_p99_us: q(syncTimes, 0.99),
  from_memory: sessions.stats.hits - before.hits,
  asked_server: sessions.stats.misses - before.misses,
}));
await sessions.close();
