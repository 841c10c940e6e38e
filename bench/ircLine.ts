/**
 * `npm run bench:irc-line`: the CPU our line parser (src/irc/ircLine.ts) and irc-framework's
 * take per line, on the line read most: a relayed PRIVMSG with server-time, msgid and account
 * tags. Each runs BENCH_LINES times after as many unmeasured (so both are optimised), then once
 * more for the first BENCH_COLD lines of a fresh copy run interpreted (`--jitless` child), which
 * is closer to a line every 200 ms in a bridge that has not run long.
 */
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { parseIrcLine } from "../src/irc/ircLine.js";

const require = createRequire(import.meta.url);
const libraryParse = require("irc-framework/src/irclineparser") as (line: string) => unknown;

const LINE = "@time=2026-11-24T16:36:49.999Z;msgid=Xy3kq0aB1cD2eF3gH4iJ;account=alice :alice[m]!~alice@127.0.0.1 PRIVMSG #bench :m2i-steady 123";
const LINES = Number(process.env.BENCH_LINES ?? 300_000);

function nsPerLine(parse: (line: string) => unknown, lines: number): number {
  let kept: unknown;
  const start = process.hrtime.bigint();
  for (let i = 0; i < lines; i++) kept = parse(LINE);
  if (kept === undefined) throw new Error("the parser returned nothing");
  return Number(process.hrtime.bigint() - start) / lines;
}

function run(lines: number): Record<string, number> {
  const figures: Record<string, number> = {};
  for (const [name, parse] of [["irc-framework", libraryParse], ["ours", parseIrcLine]] as const) {
    nsPerLine(parse, lines);
    figures[name] = nsPerLine(parse, lines);
  }
  return figures;
}

if (process.argv[2] === "--child") {
  process.stdout.write(JSON.stringify(run(Number(process.argv[3]))));
} else {
  const hot = run(LINES);
  const coldLines = Number(process.env.BENCH_COLD ?? 3_000);
  const cold = JSON.parse(execFileSync(process.execPath, ["--jitless", fileURLToPath(import.meta.url), "--child", String(coldLines)], { encoding: "utf8" })) as Record<string, number>;
  console.log(`One tagged PRIVMSG line, ${process.version}:`);
  for (const name of Object.keys(hot)) console.log(`  ${name.padEnd(14)} ${(hot[name] / 1000).toFixed(2)} µs a line optimised (${LINES} lines), ${(cold[name] / 1000).toFixed(2)} µs interpreted (${coldLines})`);
}
