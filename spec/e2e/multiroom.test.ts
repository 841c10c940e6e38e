/**
 * One channel linked to two rooms (discouraged; README says why): IRC lines reach both
 * rooms, and a Matrix user's message in one room also reaches the other, from the ghost that
 * stands for that user's IRC nick.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient } from "../harness/matrixClient.js";
import { Stack } from "../harness/stack.js";

describe("one channel, two rooms", { timeout: 120_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let bea: MatrixTestClient;
  let roomA: string;
  let roomB: string;
  let bob: IrcTestClient;

  before(async () => {
    stack = await Stack.start();
    [alice, bea] = await Promise.all([stack.matrixUser("alice"), stack.matrixUser("bea")]);
    roomA = await alice.createRoom({ name: "A" });
    roomB = await bea.createRoom({ name: "B" });
    stack.mappings = { "#shared": { roomIds: [roomA, roomB] } };
    await stack.startBridge();
    bob = await stack.ircUser("bob", ["#shared"]);
  });

  after(async () => {
    await stack?.stop();
  });

  test("an IRC line reaches both rooms", async () => {
    bob.say("#shared", "to everyone");
    const [a, b] = await Promise.all([
      alice.waitForMessage(roomA, (e) => e.content.body === "to everyone"),
      bea.waitForMessage(roomB, (e) => e.content.body === "to everyone"),
    ]);
    assert.equal(a.sender, stack.ghostId("bob"));
    assert.equal(b.sender, stack.ghostId("bob"));
  });

  test("a message in one room reaches IRC once and the other room from the sender's IRC ghost", async () => {
    await alice.sendText(roomA, "from room A");
    const line = await bob.waitForLine((l) => l.text === "from room A");
    assert.equal(line.nick, "alice[m]");
    const copy = await bea.waitForMessage(roomB, (e) => e.content.body === "from room A");
    assert.equal(copy.sender, `@irc_testnet_alice=7bm=7d:${stack.synapse.serverName}`);
    assert.equal(await bea.displayName(copy.sender), "alice[m]");
    assert.equal(alice.messages(roomA, (e) => e.content.body === "from room A").length, 1, "room A sees it once");
    assert.equal(bob.lines.filter((l) => l.text === "from room A").length, 1, "IRC sees it once");
  });
});
