// Generates src/schema.ts from ../../docs/openapi.json with the pinned openapi-typescript;
// with --check, regenerates into a temporary file and fails when the committed
// src/schema.ts differs (CI: scripts/node-client-test.sh).
//
// The one transformation: operationIds that are not unique in the spec (`get`, `list`,
// `update` appear on several paths; OpenAPI wants them unique) are left out, so the
// generator types those operations in `paths` only instead of declaring one name twice.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const check = process.argv.includes("--check");
const spec = JSON.parse(readFileSync("../../docs/openapi.json", "utf8"));
const seen = new Map();
for (const ops of Object.values(spec.paths)) {
  for (const op of Object.values(ops)) if (op && op.operationId) seen.set(op.operationId, (seen.get(op.operationId) ?? 0) + 1);
}
for (const ops of Object.values(spec.paths)) {
  for (const op of Object.values(ops)) if (op && op.operationId && seen.get(op.operationId) > 1) delete op.operationId;
}
const dir = mkdtempSync(join(tmpdir(), "hallpass-schema-"));
try {
  const input = join(dir, "openapi.json");
  writeFileSync(input, JSON.stringify(spec));
  const out = check ? join(dir, "schema.ts") : "src/schema.ts";
  execFileSync("node_modules/.bin/openapi-typescript", [input, "-o", out], { stdio: "pipe" });
  if (check) {
    if (readFileSync(out, "utf8") !== readFileSync("src/schema.ts", "utf8")) {
      console.error("clients/node/src/schema.ts is not what docs/openapi.json generates: run `npm run generate` in clients/node and commit it");
      process.exit(1);
    }
    console.log("clients/node/src/schema.ts matches docs/openapi.json");
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
