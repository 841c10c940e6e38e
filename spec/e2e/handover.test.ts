/**
 * The broker's hand-over without msgids, against real Synapse and InspIRCd: a puppet that joins
 * after the bot is the only other connection in the channel; the bot's link goes silent, then is
 * cut; the puppet takes over and replays what the bot missed. The IRC user's lines repeat
 * (`lol`, `x`, `lol`) around the cut, and each must reach Matrix exactly once, in order.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient } from "../harness/matrixClient.js";
import { Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";

/** The bridge's count of channel lines dropped as copies (from its Prometheus metrics). */
async function deduplicated(stack: Stack): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${stack.bridgePort}/metrics`)).text();
  return Number(/^bridge_irc_lines_deduplicated_total\{network="testnet"\} (\d+)/m.exec(text)?.[1] ?? 0);
}

describe("hand-over to a late joiner without msgids", { timeout: 240_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let bob: IrcTestClient;
  let roomId: string;
  let room2: string;
  /** Bob's lines as Alice sees them in a room, in order. */
  const fromBob = (room = roomId) => alice.messages(room, (e) => e.sender === stack.ghostId("bob")).map((e) => String(e.content.body));
  const say = (...texts: string[]) => texts.forEach((t) => bob.say("#late", t));

  before(async () => {
    stack = await Stack.start({ ircdWithoutModules: ["ircv3_msgid"], proxy: true });
    alice = await stack.matrixUser("lateuser");
    roomId = await alice.createRoom({ name: "Late joiner" });
    room2 = await alice.createRoom({ name: "Joined before" });
    stack.mappings = { "#late": { roomIds: [roomId] }, "#before": { roomIds: [room2] } };
    await stack.startBridge();
    bob = await stack.ircUser("bob", ["#late", "#before"]);
    await waitFor("the bot in #late and #before", async () => (await bob.names("#late")).includes("BridgeBot") && (await bob.names("#before")).includes("BridgeBot"), 30_000, 300);
  });

  after(async () => {
    await stack?.stop();
  });

  test("lines around the cut, repeated ones included, arrive exactly once and in order", async () => {
    // Only the bot is in the channel: it is nominated on the first line.
    say("lol", "x");
    await waitFor("the first two lines in Matrix", () => fromBob().length >= 2, 30_000, 100);

    // Alice's puppet joins afterwards (the bot holds the proxy's first connection).
    await alice.sendText(roomId, "hi");
    await bob.waitForLine((l) => l.text === "hi" && l.target === "#late" && l.nick === "lateuser[m]", "Alice's puppet speaking in #late", 30_000);
    assert.equal(stack.proxy!.connections.length, 2, "the bot's connection and Alice's puppet's");

    const base = await deduplicated(stack);
    say("lol", "x", "lol");
    await waitFor("three more lines in Matrix", () => fromBob().length >= 5, 30_000, 100);
    await waitFor("the puppet to read them too", async () => (await deduplicated(stack)) >= base + 3, 20_000, 100);

    // The bot's link goes silent: only the puppet reads these.
    const botLink = stack.proxy!.connections[0];
    const frozenAt = await deduplicated(stack);
    botLink.freeze();
    say("lol", "lol", "x", "lol");
    await waitFor("the puppet to read the lines the bot misses", async () => (await deduplicated(stack)) >= frozenAt + 4, 20_000, 100);
    botLink.cut();
    say("x", "lol", "end");
    await waitFor("the last line in Matrix", () => fromBob().includes("end"), 60_000, 100);

    // Once the bot is back (a candidate again, not the nominee), one more line: nothing arrives twice.
    await waitFor("the bot back in #late", async () => (await bob.names("#late")).includes("BridgeBot"), 60_000, 500);
    say("final");
    await waitFor("the final line in Matrix", () => fromBob().includes("final"), 30_000, 100);
    assert.deepEqual(fromBob(), ["lol", "x", "lol", "x", "lol", "lol", "lol", "x", "lol", "x", "lol", "end", "final"]);
  });

  test("a backup that was there from the start resumes after the right one of several identical lines", async () => {
    // The bot came back after the cut above, on the proxy's third connection.
    assert.equal(stack.proxy!.connections.length, 3, "the bot's first link, the puppet's, the bot's second");
    const botLink = stack.proxy!.connections[2];
    const sayHere = (...texts: string[]) => texts.forEach((t) => bob.say("#before", t));
    const base = await deduplicated(stack);
    // The first line in #before is the puppet's own (its echo is one copy the broker drops):
    // the bot and the puppet are both there before Bob's first line, so the puppet is a backup from the start.
    await alice.sendText(room2, "here too");
    await bob.waitForLine((l) => l.text === "here too" && l.target === "#before", "Alice's puppet speaking in #before", 30_000);
    await waitFor("the puppet to read its echo", async () => (await deduplicated(stack)) >= base + 1, 20_000, 100);
    sayHere("lol");
    await waitFor("the first line in Matrix", () => fromBob(room2).length >= 1, 30_000, 100);
    await waitFor("the puppet to read it too", async () => (await deduplicated(stack)) >= base + 2, 20_000, 100);
    botLink.freeze();
    sayHere("x", "lol");
    await waitFor("the puppet to read the lines the bot misses", async () => (await deduplicated(stack)) >= base + 4, 20_000, 100);
    botLink.cut();
    sayHere("lol", "end");
    await waitFor("the last line in Matrix", () => fromBob(room2).includes("end"), 60_000, 100);
    await waitFor("the bot back in #before", async () => (await bob.names("#before")).includes("BridgeBot"), 60_000, 500);
    sayHere("final");
    await waitFor("the final line in Matrix", () => fromBob(room2).includes("final"), 30_000, 100);
    assert.deepEqual(fromBob(room2), ["lol", "x", "lol", "lol", "end", "final"]);
  });
});
