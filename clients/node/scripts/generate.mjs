// Generates src/schema.ts from ../../docs/openapi.json with the pinned openapi-typescript;
// with --check, regenerates into a temporary file and fails when the committed
// src/schema.ts differs (CI: scripts/node-client-test.sh).
//
// operationIds must be unique (OpenAPI says so, and the generator would declare one name
// twice): a repeated one fails here, naming it, rather than being worked around.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const check = process.argv.includes("--check");
const spec = JSON.parse(readFileSync("../../docs/openapi.json", "utf8"));
const seen = new Map();
for (const ops of Object.values(spec.paths)) {
  for (const op of Object.values(ops)) if (op && op.operationId) seen.set(op.operationId, (seen.get(op.operationId) ?? 0) + 1);
}
const repeated = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
if (repeated.length > 0) {
  console.error(`docs/openapi.json repeats operationIds: ${repeated.join(", ")} (give each utoipa path its own operation_id)`);
  process.exit(1);
}
const dir = mkdtempSync(join(tmpdir(), "hallpass-schema-"));
try {
  const input = "../../docs/openapi.json";
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
