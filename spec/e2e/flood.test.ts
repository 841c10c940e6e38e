/**
 * Pacing is not loss, with flood control on at both ends: InspIRCd's own limits for clients
 * (recvq, command rate, fakelag) and the bridge's default sendRate (burst 5, then 2 lines/s).
 * A user's quick burst all arrives, in order, also across a SIGKILL of the bridge; the bot
 * rejoining many channels after a reconnect is never thrown out for flooding.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient } from "../harness/matrixClient.js";
import { Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";

const BURST = 200;
const CHANNELS = 50;
/** The schema's defaults, written out: the harness lifts them for other suites. */
const DEFAULT_SEND_RATE = { burst: 5, linesPerSecond: 2 };

/** Lines `prefix 0..n-1` arrived, each at least once, first copies in order. */
function assertAllInOrder(seen: string[], prefix: string, n: number): void {
  const expected = Array.from({ length: n }, (_, i) => `${prefix} ${i}`);
  const firstSeen = expected.map((text) => seen.indexOf(text));
  const missing = expected.filter((_, i) => firstSeen[i] < 0);
  assert.deepEqual(missing, [], "every line arrives");
  assert.deepEqual([...firstSeen].sort((a, b) => a - b), firstSeen, "lines arrive in order");
}

describe("flood control at both ends", { timeout: 900_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let roomId: string;
  let chief: IrcTestClient;
  const seenFromAlice = (prefix: string) => chief.lines.filter((l) => l.nick === "alice[m]" && l.text.startsWith(`${prefix} `)).map((l) => l.text);

  before(async () => {
    stack = await Stack.start({ proxy: true, floodLimits: true });
    stack.networkOverrides = { sendRate: DEFAULT_SEND_RATE };
    alice = await stack.matrixUser("alice");
    roomId = await alice.createRoom({ name: "Flood", preset: "public_chat" });
    const extra = await Promise.all(Array.from({ length: CHANNELS - 1 }, (_, i) => alice.createRoom({ name: `Room ${i}` })));
    stack.mappings = { "#flood": { roomIds: [roomId] }, ...Object.fromEntries(extra.map((id, i) => [`#many${i}`, { roomIds: [id] }])) };
    chief = await stack.ircUser("chief", ["#flood"]);
    await stack.startBridge();
    await alice.sendText(roomId, "ready");
    await chief.waitForLine((l) => l.text === "ready", "alice's first line", 60_000);
  });

  after(async () => {
    await stack?.stop();
  });

  test(`${BURST} messages sent at once all arrive, in order, at the pace flood control allows`, async () => {
    const started = Date.now();
    for (let i = 0; i < BURST; i++) await alice.sendText(roomId, `quick ${i}`);
    await waitFor("the whole burst on IRC", () => seenFromAlice("quick").length >= BURST, 300_000, 500);
    const seconds = (Date.now() - started) / 1000;
    assertAllInOrder(seenFromAlice("quick"), "quick", BURST);
    const undelivered = alice.messages(roomId, (e) => e.sender !== alice.userId && /could not be sent/.test(String(e.content.body)));
    assert.deepEqual(undelivered, [], "nobody was told a message was dropped");
    // burst + n / rate is the floor; the IRCd's fakelag may add to it, never the bridge's losses.
    assert.ok(seconds >= (BURST - DEFAULT_SEND_RATE.burst) / DEFAULT_SEND_RATE.linesPerSecond - 5, `took ${seconds} s`);
  });

  test(`a SIGKILL during a ${BURST}-message burst: after the restart all of them arrive, in order`, async () => {
    for (let i = 0; i < BURST; i++) await alice.sendText(roomId, `crash ${i}`);
    await waitFor("part of the burst on IRC", () => seenFromAlice("crash").length >= 20, 120_000, 200);
    await stack.bridge.stop("SIGKILL");
    assert.ok(seenFromAlice("crash").length < BURST, "the crash came mid-burst");
    await stack.startBridge();
    await waitFor("the whole burst on IRC after the restart", () => new Set(seenFromAlice("crash")).size >= BURST, 400_000, 500);
    assertAllInOrder(seenFromAlice("crash"), "crash", BURST);
  });

  test(`the bot rejoining ${CHANNELS} channels after a reconnect is not thrown out for flooding`, async () => {
    const start = chief.raw.length;
    const botLinks = stack.proxy!.connections.filter((c) => !c.client.destroyed);
    for (const link of botLinks) link.cut();
    await waitFor("the bot back in #flood", () => chief.raw.slice(start).find((l) => /:BridgeBot!\S+ JOIN :?#flood/.test(l)), 120_000);
    // All its channels, paced, without an "Excess Flood" or RecvQ quit.
    /** The bot's channels, from a WHOIS (319 lines, up to the 318 that ends it). */
    const botChannels = async (): Promise<number> => {
      const from = chief.raw.length;
      chief.client.raw("WHOIS", "BridgeBot");
      await chief.waitForRaw("the end of the WHOIS", (l) => / 318 /.test(l) && chief.raw.indexOf(l) >= from, 30_000);
      return chief.raw.slice(from).filter((l) => / 319 /.test(l)).flatMap((l) => l.split(" :").pop()!.trim().split(/\s+/)).length;
    };
    await waitFor(`the bot in all ${CHANNELS} channels`, async () => ((await botChannels()) >= CHANNELS ? true : undefined), 180_000, 5_000);
    // The cut itself shows as "Connection closed"; a flood quit would say so.
    const thrownOut = chief.raw.slice(start).filter((l) => /:BridgeBot!\S+ QUIT :.*(flood|recvq|sendq)/i.test(l));
    assert.deepEqual(thrownOut, [], "the bot was never thrown out for flooding");
    chief.say("#flood", "still bridged");
    await alice.waitForMessage(roomId, (e) => e.content.body === "still bridged", 60_000);
  });
});
