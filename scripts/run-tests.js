#!/usr/bin/env node
// Runs the compiled tests with Node's built-in runner: `node scripts/run-tests.js [unit|e2e]`.
// Lists the files itself because `node --test <dir>` differs between Node 20 and 22+.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const only = process.argv[2];
const roots = only ? [join("dist/spec", only)] : ["dist/spec/unit", "dist/spec/e2e"];
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith(".test.js")) files.push(path);
  }
};
roots.forEach(walk);
// E2E_SKIP=name,name leaves out e2e files by name (CI's second Node run skips the slowest,
// whose logic the first run covers); the skip is printed so it is never silent.
const skip = (process.env.E2E_SKIP ?? "").split(",").map((s) => s.trim()).filter(Boolean);
if (skip.length > 0) {
  const before = files.length;
  files.splice(0, files.length, ...files.filter((f) => !skip.some((name) => f.endsWith(`/${name}.test.js`))));
  console.log(`Skipping ${before - files.length} test file(s) by E2E_SKIP: ${skip.join(", ")}`);
}
if (files.length === 0) {
  console.error("No test files found under", roots.join(", "));
  process.exit(1);
}
// e2e files each start their own Synapse and IRCd, and mostly wait on them. Files that spend
// minutes in paced sending (SLOW) go first, in a lane of their own: the runner takes two
// files at a time, so the rest run one after another beside them instead of after them.
const SLOW = ["flood"];
const isSlow = (f) => SLOW.some((name) => f.endsWith(`/${name}.test.js`));
const ordered = [...files.filter(isSlow), ...files.filter((f) => !isSlow(f))];
const lanes = ordered.some(isSlow) ? 2 : 1;
const result = spawnSync(process.execPath, ["--test", `--test-concurrency=${lanes}`, ...ordered], { stdio: "inherit" });
process.exit(result.status ?? 1);
