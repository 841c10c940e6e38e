/**
 * Late IRC lines keep the time they were said at. Lines said in a channel while the bridge was
 * stopped come back from the IRCd's history (InspIRCd's chanhistory, channel mode +H) when the
 * bot rejoins, and reach Matrix once each, in order, stamped with their IRC time; nothing
 * delivered before the stop comes again, not at the restart nor when a puppet joins later. And
 * lines held up while the homeserver was unreachable reach Matrix with their IRC times.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient, TimelineEvent } from "../harness/matrixClient.js";
import { Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";

const CHANNEL = "#history";

describe("server time and recovered history", { timeout: 420_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let roomId: string;
  let chief: IrcTestClient;
  /** Reads the channel with server-time, so a test knows each line's IRC time. */
  let listener: IrcTestClient;
  const body = (e: TimelineEvent) => String(e.content.body);
  const fromChief = (prefix: string) => alice.messages(roomId, (e) => e.sender === stack.ghostId("chief") && body(e).startsWith(`${prefix} `));
  /** The IRC time (server-time tag, ms) of the line `text` as the listener read it. */
  const ircTimeOf = (text: string): number => {
    const line = listener.raw.find((l) => l.endsWith(` PRIVMSG ${CHANNEL} :${text}`));
    const time = line && /(?:^@|;)time=([^; ]+)/.exec(line)?.[1];
    assert.ok(time, `the listener read ${JSON.stringify(text)} with a time tag`);
    return Date.parse(time);
  };
  const said = async (prefix: string, n: number) => {
    for (let i = 0; i < n; i++) chief.say(CHANNEL, `${prefix} ${i}`);
    await listener.waitForLine((l) => l.text === `${prefix} ${n - 1}`, `the last ${prefix} line`);
  };
  /** Each of the lines `prefix 0..n-1` exactly once in the room, in order; returns their events. */
  const onceInOrder = (prefix: string, n: number): TimelineEvent[] => {
    const seen = fromChief(prefix);
    assert.deepEqual(seen.map(body), Array.from({ length: n }, (_, i) => `${prefix} ${i}`), `each ${prefix} line once, in order`);
    return seen;
  };

  before(async () => {
    stack = await Stack.start({ extraModules: ["chanhistory"], homeserverProxy: true });
    alice = await stack.matrixUser("alice");
    roomId = await alice.createRoom({ name: "History", preset: "public_chat" });
    stack.mappings = { [CHANNEL]: { roomIds: [roomId] } };
    // First in, so channel operator: it keeps the last 50 lines of the last day.
    chief = await stack.ircUser("chief", [CHANNEL]);
    chief.client.raw("MODE", CHANNEL, "+H", "50:1d");
    await chief.waitForRaw("+H set", (l) => new RegExp(`MODE ${CHANNEL} :?\\+H`).test(l));
    listener = await stack.ircUser("listener", [CHANNEL]);
    await stack.startBridge();
    await listener.waitForRaw("the bot joining", (l) => new RegExp(`:BridgeBot!\\S+ JOIN :?${CHANNEL}`).test(l), 60_000);
  });

  after(async () => {
    await stack?.stop();
  });

  test("lines said while the bridge was stopped arrive once each, in order, with their IRC times; nothing said before comes twice", async () => {
    await said("before", 3);
    await waitFor("the lines before the stop in Matrix", () => fromChief("before").length >= 3, 60_000);
    // Alice's puppet is in the channel too, and comes back at the restart with its own replay.
    await alice.sendText(roomId, "alice was here");
    await listener.waitForLine((l) => l.text === "alice was here", "alice's line", 60_000);
    await stack.bridge.stop("SIGTERM");

    await said("away", 5);
    const lastSaid = ircTimeOf("away 4");
    // A gap between the IRC times and the restart that a wrong timestamp could not hide in.
    await waitFor("2.5 s to pass since the last line", () => Date.now() - lastSaid >= 2_500, 10_000);
    const restartedAt = Date.now();
    await stack.startBridge();
    await waitFor("the lines said while the bridge was away", () => fromChief("away").length >= 5, 90_000);
    // The bot and then alice's puppet rejoined; lines after the replays show both were handled.
    await said("after", 1);
    await waitFor("a line said after the restart", () => fromChief("after").length >= 1, 60_000);

    const away = onceInOrder("away", 5);
    for (const [i, event] of away.entries()) {
      const ircTime = ircTimeOf(`away ${i}`);
      // The replay gives whole seconds: the event's time is the IRC time, to the second.
      assert.ok(Math.abs(event.origin_server_ts - ircTime) < 1_000, `away ${i}: origin_server_ts ${event.origin_server_ts} is the IRC time ${ircTime}`);
      assert.ok(event.origin_server_ts < restartedAt - 1_000, `away ${i}: stamped with when it was said, not the restart (${restartedAt})`);
    }
    onceInOrder("before", 3);
    assert.deepEqual(alice.messages(roomId, (e) => body(e) === "alice was here").length, 1, "alice's own line is not bridged back");
  });

  test("a puppet joining later, and a second restart, deliver nothing again", async () => {
    const fred = await stack.matrixUser("fred");
    await fred.joinRoom(roomId);
    await fred.sendText(roomId, "fred joins the channel");
    await listener.waitForLine((l) => l.text === "fred joins the channel", "fred's line", 60_000);
    await stack.bridge.stop("SIGTERM");
    await stack.startBridge();
    await said("second", 1);
    await waitFor("a line after the second restart", () => fromChief("second").length >= 1, 60_000);
    onceInOrder("before", 3);
    onceInOrder("away", 5);
    onceInOrder("after", 1);
  });

  /** Some line waits in a room's queue for the homeserver. */
  const queued = async () => {
    const metrics = await (await fetch(`http://127.0.0.1:${stack.bridgePort}/metrics`)).text();
    return Number(/^bridge_room_queue_depth (\d+)/m.exec(metrics)?.[1] ?? 0) >= 1 ? true : undefined;
  };

  test("lines held up while the homeserver is unreachable arrive with their IRC times", async () => {
    stack.homeserverProxy!.freezeAll();
    await said("frozen", 3);
    await waitFor("the IRC lines to wait for the homeserver", queued, 30_000);
    const lastSaid = ircTimeOf("frozen 2");
    await waitFor("2.5 s to pass since the last line", () => Date.now() - lastSaid >= 2_500, 10_000);
    const thawedAt = Date.now();
    stack.homeserverProxy!.thawAll();
    await waitFor("the held lines in Matrix", () => fromChief("frozen").length >= 3, 120_000);
    for (const [i, event] of onceInOrder("frozen", 3).entries()) {
      // Live lines carry milliseconds: the event's time is exactly the IRC time.
      assert.equal(event.origin_server_ts, ircTimeOf(`frozen ${i}`), `frozen ${i}: origin_server_ts is the IRC time`);
      assert.ok(event.origin_server_ts < thawedAt - 2_000, `frozen ${i}: not the time it reached the homeserver`);
    }
  });

  test("lines still waiting for an unreachable homeserver when the bridge dies come back from the replay after the restart", async () => {
    stack.homeserverProxy!.freezeAll();
    await said("stranded", 3);
    await waitFor("the IRC lines to wait for the homeserver", queued, 30_000);
    const lastSaid = ircTimeOf("stranded 2");
    // Long enough for the bridge to have stored the channel's position since these lines came.
    await waitFor("3 s to pass since the last line", () => Date.now() - lastSaid >= 3_000, 10_000);
    await stack.bridge.stop("SIGKILL");
    stack.homeserverProxy!.thawAll();
    await stack.startBridge();
    await waitFor("the stranded lines in Matrix", () => fromChief("stranded").length >= 3, 90_000);
    await said("later", 1);
    await waitFor("a line after the restart", () => fromChief("later").length >= 1, 60_000);
    for (const [i, event] of onceInOrder("stranded", 3).entries()) {
      assert.ok(Math.abs(event.origin_server_ts - ircTimeOf(`stranded ${i}`)) < 1_000, `stranded ${i}: stamped with its IRC time`);
    }
    onceInOrder("frozen", 3);
    onceInOrder("away", 5);
  });
});
