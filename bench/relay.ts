/**
 * `npm run bench`: on the local stack (Synapse, InspIRCd, the bridge as a child process),
 * sends N messages each way and prints delivery latency percentiles (send on one side →
 * seen by a client on the other), throughput and the bridge's RSS.
 *
 *   BENCH_MESSAGES=1000  how many messages each way
 *   BENCH_SEND_RATE=500  the puppet's flood-control rate (lines/s) for the run
 */
import { performance } from "node:perf_hooks";
import type { MessageEvent } from "irc-framework";
import { Stack } from "../spec/harness/stack.js";
import { waitFor } from "../spec/harness/wait.js";
import { rssMiB, summarise, runBench } from "./stats.js";

const N = Number(process.env.BENCH_MESSAGES ?? 1000);
const SEND_RATE = Number(process.env.BENCH_SEND_RATE ?? 500);

async function main(): Promise<void> {
  const stack = await Stack.start();
  try {
    const alice = await stack.matrixUser("alice");
    const roomId = await alice.createRoom({ name: "bench" });
    stack.mappings = { "#bench": { roomIds: [roomId] } };
    const config = stack.config();
    config.networks.testnet.sendRate = { burst: SEND_RATE, linesPerSecond: SEND_RATE };
    stack.bridge.writeConfig(config);
    await stack.bridge.start();
    const bob = await stack.ircUser("bob", ["#bench"]);
    const pid = stack.bridge.pid!;
    const rssIdle = await rssMiB(pid);

    // Matrix → IRC: alice sends one after another, as a client does; bob times arrivals.
    const sentAt = new Map<string, number>();
    const m2i: number[] = [];
    bob.client.on("privmsg", (e: MessageEvent) => {
      const started = sentAt.get(e.message);
      if (started !== undefined) m2i.push(performance.now() - started);
    });
    await alice.sendText(roomId, "warm-up");
    await bob.waitForLine((l) => l.text === "warm-up");
    const m2iStart = performance.now();
    for (let i = 0; i < N; i++) {
      const body = `m2i ${i}`;
      sentAt.set(body, performance.now());
      await alice.sendText(roomId, body);
    }
    await waitFor("every Matrix message on IRC", () => m2i.length >= N, 120_000);
    const m2iElapsed = performance.now() - m2iStart;
    const rssAfterM2i = await rssMiB(pid);

    // IRC → Matrix: bob sends as fast as the IRCd takes it; alice's sync loop times arrivals.
    const i2m: number[] = [];
    const ircSentAt = new Map<string, number>();
    alice.onTimelineEvent = (_room, event) => {
      const started = ircSentAt.get(String(event.content.body));
      if (started !== undefined && event.type === "m.room.message") i2m.push(performance.now() - started);
    };
    bob.say("#bench", "warm-up 2");
    await alice.waitForMessage(roomId, (e) => e.content.body === "warm-up 2");
    const i2mStart = performance.now();
    for (let i = 0; i < N; i++) {
      const text = `i2m ${i}`;
      ircSentAt.set(text, performance.now());
      bob.say("#bench", text);
    }
    await waitFor("every IRC message in Matrix", () => i2m.length >= N, 300_000);
    const i2mElapsed = performance.now() - i2mStart;
    const rssAfterI2m = await rssMiB(pid);

    const order = alice.messages(roomId, (e) => String(e.content.body).startsWith("i2m ")).map((e) => Number(String(e.content.body).slice(4)));
    const inOrder = order.every((v, i) => v === i);

    process.stdout.write(
      [
        "",
        `Relay benchmark: ${N} messages each way, Node ${process.version}, puppet send rate ${SEND_RATE} lines/s`,
        summarise("Matrix -> IRC", m2i, m2iElapsed, N),
        summarise("IRC -> Matrix", i2m, i2mElapsed, N),
        `IRC -> Matrix order preserved: ${inOrder ? "yes" : "NO"}`,
        `bridge RSS: idle ${rssIdle.toFixed(1)} MiB, after Matrix->IRC ${rssAfterM2i.toFixed(1)} MiB, after IRC->Matrix ${rssAfterI2m.toFixed(1)} MiB`,
        "",
      ].join("\n"),
    );
  } finally {
    await stack.stop();
  }
}

runBench("relay bench", main);
