#!/usr/bin/env node
// Runs the compiled tests with Node's built-in runner: `node scripts/run-tests.js [unit|e2e|e2e-postgres]`.
// Lists the files itself because `node --test <dir>` differs between Node 20 and 22+.
//
// The e2e suite runs on the embedded NeDB store; then a second pass runs the e2e files of
// POSTGRES_PASS again with E2E_STORE=postgres (each stack starts its own PostgreSQL), the parts
// where the store matters most, to keep CI's time in bounds (spec/e2e/postgres.test.ts runs on
// PostgreSQL in the first pass already). E2E_POSTGRES=all runs every e2e file on PostgreSQL,
// E2E_POSTGRES=none skips the pass, E2E_POSTGRES=a,b names the files.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const POSTGRES_PASS = ["transactions", "restart", "relay", "pm", "portal", "admin", "faults"];
const only = process.argv[2];
const postgresOnly = only === "e2e-postgres";
const roots = postgresOnly ? [] : only ? [join("dist/spec", only)] : ["dist/spec/unit", "dist/spec/e2e"];
const files = [];
roots.forEach((root) => walkInto(files, root));
function walkInto(list, dir) {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walkInto(list, path);
    else if (name.endsWith(".test.js")) list.push(path);
  }
}
// E2E_SKIP=name,name leaves out e2e files by name (CI's second Node run skips the slowest,
// whose logic the first run covers); the skip is printed so it is never silent.
const skip = (process.env.E2E_SKIP ?? "").split(",").map((s) => s.trim()).filter(Boolean);
if (skip.length > 0) {
  const before = files.length;
  files.splice(0, files.length, ...files.filter((f) => !skip.some((name) => f.endsWith(`/${name}.test.js`))));
  console.log(`Skipping ${before - files.length} test file(s) by E2E_SKIP: ${skip.join(", ")}`);
}
// e2e files each start their own Synapse and IRCd, and mostly wait on them. Files that spend
// minutes in paced sending (SLOW) go first, in a lane of their own: the runner takes two
// files at a time, so the rest run one after another beside them instead of after them.
const SLOW = ["flood"];
const isSlow = (f) => SLOW.some((name) => f.endsWith(`/${name}.test.js`));
function runPass(passFiles, env = process.env) {
  const ordered = [...passFiles.filter(isSlow), ...passFiles.filter((f) => !isSlow(f))];
  const lanes = ordered.some(isSlow) ? 2 : 1;
  const started = Date.now();
  const result = spawnSync(process.execPath, ["--test", `--test-concurrency=${lanes}`, ...ordered], { stdio: "inherit", env });
  console.log(`(${passFiles.length} file(s) in ${Math.round((Date.now() - started) / 1000)} s)`);
  return result.status ?? 1;
}

const e2eFiles = [];
if (postgresOnly || !only) {
  walkInto(e2eFiles, "dist/spec/e2e");
  const wanted = process.env.E2E_POSTGRES ?? POSTGRES_PASS.join(",");
  const names = wanted === "all" ? null : wanted === "none" ? [] : wanted.split(",").map((s) => s.trim()).filter(Boolean);
  const keep = (f) => !f.endsWith("/postgres.test.js") && !skip.some((n) => f.endsWith(`/${n}.test.js`)) && (names === null || names.some((n) => f.endsWith(`/${n}.test.js`)));
  e2eFiles.splice(0, e2eFiles.length, ...e2eFiles.filter(keep));
}
if (files.length === 0 && e2eFiles.length === 0) {
  console.error("No test files found under", roots.join(", ") || "dist/spec/e2e");
  process.exit(1);
}
let status = files.length > 0 ? runPass(files) : 0;
if (e2eFiles.length > 0) {
  console.log(`=== e2e on PostgreSQL (E2E_STORE=postgres): ${e2eFiles.map((f) => f.replace(/^.*\//, "")).join(", ")} ===`);
  status = runPass(e2eFiles, { ...process.env, E2E_STORE: "postgres" }) || status;
}
process.exit(status);
