/**
 * `npm run bench:pool`: drives N Matrix users into bridged rooms so that N puppets connect to
 * a real InspIRCd, then reports memory per puppet (RSS, and V8 heap after a forced GC), the
 * time to connect all N, the time to recover all N after an IRCd restart against the ideal
 * N / rate, and a message check (duplicates and lost lines into Matrix).
 *
 * The users' joins reach the bridge as the homeserver would send them (appservice
 * transactions of m.room.member events, 100 per transaction) rather than through 5,000
 * registered Synapse accounts: it is the pool that is measured. Lines from IRC go into real
 * Synapse rooms, read back by a real Matrix client.
 *
 *   BENCH_PUPPETS=5000        puppets per shape
 *   BENCH_SHAPES=spread,single  50 channels, or one channel
 *   BENCH_CONNECT_RATE=100    pool.connectsPerSecond for the run
 *   BENCH_NODE_ARGS="--flag ..."  extra Node.js flags for the bridge (e.g. --max-semi-space-size=2)
 *   BENCH_HEAP_SNAPSHOTS=dir  also write the bridge's heap (baseline, loaded) there: compare
 *                             them with `node dist/bench/heapDiff.js base loaded N`
 *   BENCH_MID_SNAPSHOT=1      with BENCH_HEAP_SNAPSHOTS, also one when half the puppets are in (it
 *                             pauses the bridge mid-storm): `heapDiff.js --gone mid loaded` then
 *                             lists what the connections in flight held and let go (the
 *                             snapshot itself inflates RSS: the RSS figures of such a run mean nothing)
 *   BENCH_SMAPS=1             print where the bridge's RSS lives (V8 pages, malloc arenas, stacks,
 *                             files; see smaps.ts) at baseline and loaded
 *   BENCH_MALLOC_TRIM=1       after the loaded sample, glibc's malloc_info and malloc_trim(0) via
 *                             gdb (diagnosis only): how much of RSS was free memory malloc kept
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { IrcTestClient } from "../spec/harness/ircClient.js";
import type { MatrixTestClient } from "../spec/harness/matrixClient.js";
import { Stack } from "../spec/harness/stack.js";
import { waitFor } from "../spec/harness/wait.js";
import { formatBreakdown, heapSpaces, mallocInfoAndTrim } from "./smaps.js";
import { runBench } from "./stats.js";

const N = Number(process.env.BENCH_PUPPETS ?? 5000);
const SHAPES = (process.env.BENCH_SHAPES ?? "spread,single").split(",");
const RATE = Number(process.env.BENCH_CONNECT_RATE ?? 100);
const CHECK_LINES = 100;
const SNAPSHOTS = process.env.BENCH_HEAP_SNAPSHOTS ?? "";
const SMAPS = process.env.BENCH_SMAPS === "1";
const MID_SNAPSHOT = SNAPSHOTS !== "" && process.env.BENCH_MID_SNAPSHOT === "1";
const MALLOC_TRIM = process.env.BENCH_MALLOC_TRIM === "1";

interface Sample {
  /** Resident memory at rest (see `sample`). */
  rssMiB: number;
  /** Resident memory in the forced collection's own turn, as the bench read it before. */
  rssAtGcMiB: number;
  heapMiB: number;
  /** V8's heap as reserved from the system (used or not), and its new space alone. */
  heapTotalMiB: number;
  newSpaceMiB: number;
  connected: number;
  memberships: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function sample(stack: Stack, gc = true): Promise<Sample> {
  const base = `http://127.0.0.1:${stack.bridgePort}/metrics`;
  const url = `${base}${gc ? "?gc=1" : ""}`;
  // V8 sweeps after a collection in the background and only then gives pages back: read the
  // figures after a second collection, once the first one's sweeping has had time to finish,
  // not in the middle of it (RSS read at once varied by a factor of two between equal runs).
  if (gc) {
    await (await fetch(url)).text();
    await sleep(2_000);
  }
  const text = await (await fetch(url)).text();
  const value = (re: RegExp, from = text) => Number(re.exec(from)?.[1] ?? NaN);
  const rss = /^process_resident_memory_bytes (\S+)/m;
  // The heap figures are the second collection's (live data only). RSS is read 2 s later with
  // no collection: read in the collection's own turn (as /metrics?gc=1 answers), it still holds
  // what the collection itself took and gives back within milliseconds (the pages it evacuated
  // into, before the emptied ones are unmapped; its worklists). That is nothing at baseline but
  // 27-35 MiB with 2,000 puppets (12 with 5,000), so it inflated the per-puppet figure by up to
  // half (37-42 KiB read in the turn against 24-26 at rest; BENCH_SMAPS=1 prints the series).
  let rssAtRest = value(rss);
  if (gc) {
    await sleep(2_000);
    rssAtRest = value(rss, await (await fetch(base)).text());
  }
  return {
    rssMiB: rssAtRest / 2 ** 20,
    rssAtGcMiB: value(rss) / 2 ** 20,
    heapMiB: value(/^nodejs_heap_size_used_bytes (\S+)/m) / 2 ** 20,
    heapTotalMiB: value(/^nodejs_heap_size_total_bytes (\S+)/m) / 2 ** 20,
    newSpaceMiB: value(/^nodejs_heap_space_size_total_bytes\{space="new"\} (\S+)/m) / 2 ** 20,
    connected: value(/^bridge_irc_connections\{network="testnet",state="connected"\} (\S+)/m),
    memberships: value(/^bridge_irc_channel_memberships\{network="testnet"\} (\S+)/m),
  };
}

/** Has the bridge write its heap (after a GC: the sample before did one) to SNAPSHOTS/<name>.heapsnapshot. */
async function heapSnapshot(stack: Stack, name: string): Promise<void> {
  if (!SNAPSHOTS) return;
  const fresh = () => readdirSync(SNAPSHOTS).filter((f) => f.startsWith("Heap.") && f.endsWith(".heapsnapshot"));
  process.kill(stack.bridge.pid!, "SIGUSR2");
  let last = -1;
  await waitFor(`the ${name} heap snapshot`, () => {
    const [file] = fresh();
    if (!file) return false;
    const size = statSync(join(SNAPSHOTS, file)).size;
    if (size > 0 && size === last) {
      renameSync(join(SNAPSHOTS, file), join(SNAPSHOTS, `${name}.heapsnapshot`));
      return true;
    }
    last = size;
    return false;
  }, 600_000, 2_000);
}

/** BENCH_SMAPS=1: where the bridge's RSS lives (see smaps.ts), printed as the bench goes. */
async function diagnose(stack: Stack, label: string): Promise<void> {
  // RSS as a forced collection leaves it, and as it settles afterwards.
  const vmRss = () => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${stack.bridge.pid}/status`, "utf8"))?.[1]) / 1024;
  const t0 = performance.now();
  const text = await (await fetch(`http://127.0.0.1:${stack.bridgePort}/metrics?gc=1`)).text();
  const atGc = Number(/^process_resident_memory_bytes (\S+)/m.exec(text)?.[1]) / 2 ** 20;
  const series: string[] = [`in the GC's answer ${atGc.toFixed(1)}`];
  for (const at of [0, 50, 200, 500, 1000, 2000, 5000]) {
    const wait = at - (performance.now() - t0);
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    series.push(`${at} ms ${vmRss().toFixed(1)}`);
  }
  process.stdout.write(`  RSS (MiB) after a forced GC, ${label}: ${series.join(", ")}\n`);
  const metrics = await (await fetch(`http://127.0.0.1:${stack.bridgePort}/metrics`)).text();
  process.stdout.write(`${formatBreakdown(label, stack.bridge.pid!)}\n${heapSpaces(metrics)}\n`);
}

async function joinUsers(stack: Stack, rooms: string[]): Promise<void> {
  const url = `http://127.0.0.1:${stack.bridgePort}/_matrix/app/v1/transactions`;
  for (let start = 0; start < N; start += 100) {
    const events = Array.from({ length: Math.min(100, N - start) }, (_, k) => {
      const i = start + k;
      const user = `@benchuser${i}:localhost`;
      return { type: "m.room.member", event_id: `$${randomUUID()}`, room_id: rooms[i % rooms.length], sender: user, state_key: user, origin_server_ts: Date.now(), content: { membership: "join" } };
    });
    const res = await fetch(`${url}/bench-join-${start}`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${stack.registration.hs_token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ events }),
    });
    if (!res.ok) throw new Error(`transaction refused: ${res.status}`);
  }
}

/** Puppets present in the channels, by a fresh NAMES of each. */
async function puppetsPresent(observer: IrcTestClient, channels: string[]): Promise<number> {
  let total = 0;
  for (const channel of channels) total += (await observer.names(channel)).filter((n) => /^benchuser\d+\[m\]$/.test(n)).length;
  return total;
}

async function messageCheck(observer: IrcTestClient, reader: MatrixTestClient, roomId: string, channel: string, tag: string) {
  const lines = Array.from({ length: CHECK_LINES }, (_, i) => `${tag} ${i}`);
  for (const line of lines) observer.say(channel, line);
  await waitFor(`${tag}: the last line in Matrix`, () => reader.messages(roomId).some((e) => e.content.body === lines[lines.length - 1]), 180_000, 200);
  const seen = reader.messages(roomId, (e) => String(e.content.body).startsWith(`${tag} `)).map((e) => String(e.content.body));
  const duplicates = seen.length - new Set(seen).size;
  const lost = lines.filter((l) => !seen.includes(l)).length;
  const inOrder = seen.every((l, i) => l === lines[i]);
  return `${CHECK_LINES} lines: ${duplicates} duplicates, ${lost} lost, order ${inOrder ? "kept" : "BROKEN"}`;
}

async function runShape(shape: string): Promise<string[]> {
  const channelCount = shape === "single" ? 1 : 50;
  const stack = await Stack.start();
  try {
    const reader = await stack.matrixUser("benchreader");
    const rooms = await Promise.all(Array.from({ length: channelCount }, (_, i) => reader.createRoom({ name: `bench ${i}` })));
    const channels = rooms.map((_, i) => `#bench${i}`);
    stack.mappings = Object.fromEntries(channels.map((c, i) => [c, { roomIds: [rooms[i]] }]));
    stack.networkOverrides = { pool: { maxClients: 0, connectsPerSecond: RATE, maxConnectsInFlight: Math.max(50, RATE * 2) }, connectTimeoutMs: 60_000 };
    stack.bridge.nodeArgs = ["--expose-gc", ...(process.env.BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean)];
    if (SNAPSHOTS) {
      mkdirSync(SNAPSHOTS, { recursive: true });
      stack.bridge.nodeArgs.push("--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${SNAPSHOTS}`);
    }
    await stack.startBridge();
    let observer = await stack.ircUser("observer", channels);
    const baseline = await sample(stack);
    await heapSnapshot(stack, `${shape}-baseline`);
    if (SMAPS) await diagnose(stack, "baseline");

    const started = performance.now();
    await joinUsers(stack, rooms);
    // The bridge's own count of joined channels (bot + puppets) tells when all are in; the
    // observer's NAMES then confirms it from the server's side.
    const allIn = async () => (await sample(stack, false)).memberships >= N + channelCount;
    if (MID_SNAPSHOT) {
      await waitFor("half the puppets in", async () => (await sample(stack, false)).memberships >= N / 2, 1_800_000, 100);
      await heapSnapshot(stack, `${shape}-mid`);
    }
    await waitFor("every puppet in its channel", allIn, 1_800_000, 250);
    const connectSeconds = (performance.now() - started) / 1000;
    await waitFor("the server to list every puppet", async () => (await puppetsPresent(observer, channels)) >= N, 60_000, 500);
    const loaded = await sample(stack);
    await heapSnapshot(stack, `${shape}-loaded`);
    if (SMAPS) await diagnose(stack, "loaded");
    if (MALLOC_TRIM) {
      process.stdout.write(`${mallocInfoAndTrim(stack.bridge.pid!, join(stack.dir, "malloc-info.xml"))}\n`);
      const trimmed = await sample(stack);
      process.stdout.write(`  after malloc_trim(0): RSS ${trimmed.rssMiB.toFixed(1)} MiB (was ${loaded.rssMiB.toFixed(1)})\n`);
      if (SMAPS) await diagnose(stack, "loaded, trimmed");
    }
    const check = await messageCheck(observer, reader, rooms[0], channels[0], "before");

    // Recovery: the IRCd goes away and comes back; every puppet must return.
    await stack.ircd.stop();
    await stack.ircd.start();
    const recoverStart = performance.now();
    await waitFor("every puppet back in its channel", allIn, 1_800_000, 250);
    const recoverSeconds = (performance.now() - recoverStart) / 1000;
    observer = await stack.ircUser("observer2", channels);
    await waitFor("the server to list every puppet again", async () => (await puppetsPresent(observer, channels)) >= N, 60_000, 500);
    const recovered = await sample(stack);
    await new Promise((resolve) => setTimeout(resolve, 30_000)); // measured on purpose: memory once the ramp is over
    const settled = await sample(stack);
    if (SMAPS) await diagnose(stack, "settled after the restart");
    const checkAfter = await messageCheck(observer, reader, rooms[0], channels[0], "after");
    const ideal = N / RATE;
    const perPuppet = (miB: number) => ((miB * 1024) / N).toFixed(1);
    return [
      `shape ${shape}: ${N} puppets over ${channelCount} channel(s), connect rate ${RATE}/s, Node ${process.version}`,
      `  memory  baseline RSS ${baseline.rssMiB.toFixed(0)} MiB, heap ${baseline.heapMiB.toFixed(1)} MiB; ` +
        `with ${N} puppets RSS ${loaded.rssMiB.toFixed(0)} MiB, heap ${loaded.heapMiB.toFixed(1)} MiB (after GC)`,
      `  per puppet  RSS ${perPuppet(loaded.rssMiB - baseline.rssMiB)} KiB, heap ${perPuppet(loaded.heapMiB - baseline.heapMiB)} KiB ` +
        `(RSS at rest, 2 s after the GC; at a full GC, its peak: ${baseline.rssAtGcMiB.toFixed(0)} -> ${loaded.rssAtGcMiB.toFixed(0)} MiB, ${perPuppet(loaded.rssAtGcMiB - baseline.rssAtGcMiB)} KiB)`,
      `  V8 heap reserved  baseline ${baseline.heapTotalMiB.toFixed(0)} MiB (new space ${baseline.newSpaceMiB.toFixed(0)}), with ${N} puppets ${loaded.heapTotalMiB.toFixed(0)} MiB (new space ${loaded.newSpaceMiB.toFixed(0)})`,
      `  connect all ${N}: ${connectSeconds.toFixed(1)} s (ideal at ${RATE}/s: ${ideal.toFixed(1)} s)`,
      `  recover all ${N} after an IRCd restart: ${recoverSeconds.toFixed(1)} s (ideal ${ideal.toFixed(1)} s, ${(((recoverSeconds - ideal) / ideal) * 100).toFixed(1)} % over); RSS ${recovered.rssMiB.toFixed(0)} MiB, heap ${recovered.heapMiB.toFixed(1)} MiB; 30 s later RSS ${settled.rssMiB.toFixed(0)} MiB`,
      `  message check before restart: ${check}`,
      `  message check after restart:  ${checkAfter}`,
    ];
  } finally {
    await stack.stop();
  }
}

async function main(): Promise<void> {
  const report: string[] = [];
  for (const shape of SHAPES) {
    const lines = await runShape(shape);
    process.stdout.write(`${lines.join("\n")}\n`);
    report.push(...lines);
  }
  process.stdout.write(`\nPool benchmark\n${report.join("\n")}\n`);
}

runBench("pool bench", main);
