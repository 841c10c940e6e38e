/**
 * `npm run bench:relay-cost`: what relaying one message costs the bridge, each way, at a
 * steady rate and in a burst, on the local stack (Synapse, InspIRCd, the bridge as a child).
 *
 * For each window it prints the bridge process's CPU time per message (utime + stime from
 * /proc, read at the window's edges only), the end-to-end latency a person sees (sent on one
 * side → seen on the other) with p50/p95/p99, the bridge-added part of it (from the bridge's
 * own `bridge_relay_seconds` histogram: transaction received → line written to the IRC socket,
 * and IRC line read → homeserver answered minus the homeserver's own time), and msgs/s.
 *
 *   BENCH_STEADY=300       messages per steady window, sent at BENCH_RATE per second
 *   BENCH_RATE=5
 *   BENCH_BURST_M2I=100    Matrix messages sent at once
 *   BENCH_BURST_I2M=300    IRC lines sent at once
 *   BENCH_FLOOD=off        lift the IRCd's and the bridge's flood control (the default; "on" keeps both)
 *   BENCH_PROFILE=<dir>    run the bridge with --cpu-prof, writing the profile into <dir> at stop
 *   BENCH_PERF=1           record each window's main thread with Linux perf and print the top
 *                          functions by CPU (see perfTop.ts: V8's sampler counts wall-clock time)
 *   BENCH_ONLY=m2i|i2m     run one direction only (for a profile of it)
 *   BENCH_IDLE=20          seconds of no traffic over which the bridge's idle CPU is measured first
 *                          (at a steady 5/s, every 5 ms/s of idle CPU adds 1 ms to each message)
 */
import { readFile, rm } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import type { MessageEvent } from "irc-framework";
import { Stack } from "../spec/harness/stack.js";
import { waitFor } from "../spec/harness/wait.js";
import { PerfRecording } from "./perfTop.js";
import { percentile, runBench } from "./stats.js";

const STEADY = Number(process.env.BENCH_STEADY ?? 300);
const RATE = Number(process.env.BENCH_RATE ?? 5);
const BURST_M2I = Number(process.env.BENCH_BURST_M2I ?? 100);
const BURST_I2M = Number(process.env.BENCH_BURST_I2M ?? 300);
const FLOOD = process.env.BENCH_FLOOD === "on";
const PROFILE_DIR = process.env.BENCH_PROFILE;
const PERF = process.env.BENCH_PERF === "1";
const ONLY = process.env.BENCH_ONLY;
const IDLE_SECONDS = Number(process.env.BENCH_IDLE ?? 20);
/** The schema's default sendRate, written out (as in spec/e2e/flood.test.ts). */
const DEFAULT_SEND_RATE = { burst: 5, linesPerSecond: 2 };

/** CPU seconds (user + system) the process has used so far. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces) start after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / 100; // USER_HZ is 100 on Linux.
}

interface Histogram {
  buckets: [number, number][];
  count: number;
}

/** The cumulative buckets of `bridge_relay_seconds{direction}` from /metrics. */
async function relayHistogram(stack: Stack, direction: string): Promise<Histogram> {
  const text = await (await fetch(`http://127.0.0.1:${stack.config().appservice.port}/metrics`)).text();
  const buckets: [number, number][] = [];
  let count = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith("bridge_relay_seconds") || !line.includes(`direction="${direction}"`)) continue;
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    const le = /le="([^"]+)"/.exec(line)?.[1];
    if (line.startsWith("bridge_relay_seconds_bucket") && le) buckets.push([le === "+Inf" ? Infinity : Number(le), value]);
    if (line.startsWith("bridge_relay_seconds_count")) count = value;
  }
  return { buckets, count };
}

/** A percentile (ms) of what was observed between two snapshots, at bucket resolution (upper bound). */
function histogramPercentile(before: Histogram, after: Histogram, p: number): number {
  const total = after.count - before.count;
  if (total <= 0) return NaN;
  for (let i = 0; i < after.buckets.length; i++) {
    const inWindow = after.buckets[i][1] - (before.buckets[i]?.[1] ?? 0);
    if (inWindow >= (p / 100) * total) return after.buckets[i][0] * 1000;
  }
  return Infinity;
}

interface Window {
  label: string;
  messages: number;
  cpu: number;
  elapsedMs: number;
  latencies: number[];
  added: [Histogram, Histogram];
}

function report(w: Window): string {
  const sorted = [...w.latencies].sort((a, b) => a - b);
  const ms = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)}` : String(v));
  const [b, a] = w.added;
  return [
    `${w.label}: ${w.latencies.length}/${w.messages} delivered in ${(w.elapsedMs / 1000).toFixed(2)} s (${((w.latencies.length / w.elapsedMs) * 1000).toFixed(1)} msg/s)`,
    `  bridge CPU ${((w.cpu / w.messages) * 1000).toFixed(2)} ms per message (${w.cpu.toFixed(2)} s total)`,
    `  end to end   p50 ${ms(percentile(sorted, 50))}  p95 ${ms(percentile(sorted, 95))}  p99 ${ms(percentile(sorted, 99))} ms`,
    `  bridge-added p50 ≤${ms(histogramPercentile(b, a, 50))}  p95 ≤${ms(histogramPercentile(b, a, 95))}  p99 ≤${ms(histogramPercentile(b, a, 99))} ms (${a.count - b.count} observations)`,
  ].join("\n");
}

async function main(): Promise<void> {
  const stack = await Stack.start({ floodLimits: FLOOD });
  const windows: Window[] = [];
  const profiles: string[] = [];
  let bridgePid: number | undefined;
  try {
    const alice = await stack.matrixUser("alice");
    const roomId = await alice.createRoom({ name: "bench" });
    stack.mappings = { "#bench": { roomIds: [roomId] } };
    const config = stack.config();
    // The harness lifts the bridge's send rate for its suites: "on" means the schema's default.
    config.networks.testnet.sendRate = FLOOD ? DEFAULT_SEND_RATE : { burst: 10_000, linesPerSecond: 10_000 };
    stack.bridge.writeConfig(config);
    if (PROFILE_DIR) stack.bridge.nodeArgs = ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`];
    if (PERF) stack.bridge.nodeArgs = [...stack.bridge.nodeArgs, "--perf-basic-prof"];
    if (process.env.BENCH_NODE_ARGS) stack.bridge.nodeArgs = [...(stack.bridge.nodeArgs ?? []), ...process.env.BENCH_NODE_ARGS.split(" ")];
    await stack.bridge.start();
    const bob = await stack.ircUser("bob", ["#bench"]);
    const pid = stack.bridge.pid!;
    bridgePid = pid;

    const seenOnIrc = new Map<string, number>();
    bob.client.on("privmsg", (e: MessageEvent) => seenOnIrc.set(e.message, performance.now()));
    const seenInMatrix = new Map<string, number>();
    alice.onTimelineEvent = (_room, event) => {
      if (event.type === "m.room.message") seenInMatrix.set(String(event.content.body), performance.now());
    };
    await alice.sendText(roomId, "warm-up");
    await bob.waitForLine((l) => l.text === "warm-up");
    bob.say("#bench", "warm-up 2");
    await alice.waitForMessage(roomId, (e) => e.content.body === "warm-up 2");

    const idleCpu0 = await cpuSeconds(pid);
    const idleStart = performance.now();
    await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
    const idleMsPerSecond = (((await cpuSeconds(pid)) - idleCpu0) * 1000) / ((performance.now() - idleStart) / 1000);

    const measure = async (label: string, direction: string, bodies: string[], send: (bodies: string[], sentAt: Map<string, number>) => Promise<void>, seen: Map<string, number>) => {
      const sentAt = new Map<string, number>();
      const added0 = await relayHistogram(stack, direction);
      const recording = PERF ? await PerfRecording.start(pid) : null;
      const cpu0 = await cpuSeconds(pid);
      const t0 = performance.now();
      await send(bodies, sentAt);
      await waitFor(`${label}: all delivered`, () => bodies.every((b) => seen.has(b)), 600_000, 50);
      const elapsedMs = Math.max(...bodies.map((b) => seen.get(b)!)) - t0;
      const cpu = (await cpuSeconds(pid)) - cpu0;
      if (recording) profiles.push(`perf profile of "${label}":\n${await recording.stop()}`);
      const added1 = await relayHistogram(stack, direction);
      windows.push({ label, messages: bodies.length, cpu, elapsedMs, latencies: bodies.map((b) => seen.get(b)! - sentAt.get(b)!), added: [added0, added1] });
    };
    const paced = (sendOne: (body: string) => Promise<void> | void) => async (bodies: string[], sentAt: Map<string, number>) => {
      const start = performance.now();
      for (let i = 0; i < bodies.length; i++) {
        const due = start + (i * 1000) / RATE;
        await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
        sentAt.set(bodies[i], performance.now());
        await sendOne(bodies[i]);
      }
    };
    const range = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix} ${i}`);

    if (ONLY !== "i2m") {
      await measure(`Matrix -> IRC, ${STEADY} at ${RATE}/s`, "matrix_to_irc", range("m2i-steady", STEADY), paced((b) => alice.sendText(roomId, b).then(() => undefined)), seenOnIrc);
      await measure(`Matrix -> IRC, ${BURST_M2I} at once`, "matrix_to_irc", range("m2i-burst", BURST_M2I), async (bodies, sentAt) => {
        await Promise.all(bodies.map((b) => (sentAt.set(b, performance.now()), alice.sendText(roomId, b))));
      }, seenOnIrc);
      if (FLOOD) {
        // The bridge's own pace: the first `burst` lines at once, the rest at linesPerSecond (the IRCd may hold them back more).
        const allowed = Math.max(0, BURST_M2I - DEFAULT_SEND_RATE.burst) / DEFAULT_SEND_RATE.linesPerSecond;
        windows[windows.length - 1].label += ` (the bridge's send rate allows ${allowed.toFixed(1)} s)`;
      }
    }
    if (ONLY !== "m2i") {
      await measure(`IRC -> Matrix, ${STEADY} at ${RATE}/s`, "irc_to_matrix", range("i2m-steady", STEADY), paced((b) => bob.say("#bench", b)), seenInMatrix);
      await measure(`IRC -> Matrix, ${BURST_I2M} at once`, "irc_to_matrix", range("i2m-burst", BURST_I2M), async (bodies, sentAt) => {
        for (const b of bodies) {
          sentAt.set(b, performance.now());
          bob.say("#bench", b);
        }
      }, seenInMatrix);
      const order = alice.messages(roomId, (e) => String(e.content.body).startsWith("i2m-burst ")).map((e) => Number(String(e.content.body).split(" ")[1]));
      process.stdout.write(`IRC -> Matrix burst order preserved: ${order.every((v, i) => v === i) ? "yes" : "NO"}\n`);
    }
    process.stdout.write(
      [
        "",
        `Relay cost benchmark, Node ${process.version}, flood control ${FLOOD ? "on (IRCd limits, default send rate)" : "lifted"}`,
        `Idle: bridge CPU ${idleMsPerSecond.toFixed(2)} ms per second over ${IDLE_SECONDS} s with no traffic`,
        ...windows.map(report),
        ...profiles,
        "",
      ].join("\n"),
    );
  } finally {
    await stack.stop();
    // The bridge's --perf-basic-prof map (V8 writes it to /tmp).
    if (bridgePid !== undefined && PERF) await rm(`/tmp/perf-${bridgePid}.map`, { force: true });
  }
}

runBench("relay cost bench", main);
