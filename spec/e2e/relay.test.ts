/**
 * Messages both ways through a statically mapped room ↔ channel, against a real Synapse and
 * a real InspIRCd, as a Matrix user (alice) and an IRC user (bob) would see them.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient } from "../harness/matrixClient.js";
import { Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";

describe("relaying in a mapped room", { timeout: 240_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let bob: IrcTestClient;
  let roomId: string;
  const puppetNick = "alice[m]";

  before(async () => {
    stack = await Stack.start();
    alice = await stack.matrixUser("alice");
    roomId = await alice.createRoom({ name: "Bridged" });
    stack.mappings = { "#test": { roomIds: [roomId] } };
    await stack.startBridge();
    bob = await stack.ircUser("bob", ["#test", "#other"]);
  });

  after(async () => {
    await stack?.stop();
  });

  test("a Matrix user's message reaches IRC from that user's own nick", async () => {
    await alice.sendText(roomId, "hello from matrix");
    const line = await bob.waitForLine((l) => l.text === "hello from matrix", "alice's message");
    assert.deepEqual(line, { kind: "privmsg", nick: puppetNick, target: "#test", text: "hello from matrix" });
  });

  test("an IRC user's message reaches Matrix from a ghost named after the nick", async () => {
    bob.say("#test", "hello from irc");
    const event = await alice.waitForMessage(roomId, (e) => e.content.body === "hello from irc");
    assert.equal(event.sender, stack.ghostId("bob"));
    assert.equal(event.content.msgtype, "m.text");
    assert.equal(await alice.displayName(event.sender), "bob");
  });

  test("the bridge remembers which IRC msgid each Matrix event became, both ways", async () => {
    const eventId = await alice.sendText(roomId, "remember my msgid");
    await bob.waitForLine((l) => l.text === "remember my msgid");
    const msgidOf = (text: string) => bob.raw.find((l) => l.endsWith(`:${text}`))?.match(/(?:^@|;)msgid=([^; ]+)/)?.[1];
    const sentMsgid = msgidOf("remember my msgid");
    assert.ok(sentMsgid, "InspIRCd tags lines with msgid");
    bob.say("#test", "and mine too");
    const fromIrc = await alice.waitForMessage(roomId, (e) => e.content.body === "and mine too");
    await waitFor("both links in the store", async () => {
      const all = await stack.storedMessageLinks();
      return all.some((l) => l.eventId === eventId && l.msgid === sentMsgid) && all.some((l) => l.eventId === fromIrc.event_id);
    });
  });

  test("emotes and notices cross both ways", async () => {
    await alice.sendText(roomId, "waves", "m.emote");
    await alice.sendText(roomId, "a notice from matrix", "m.notice");
    assert.equal((await bob.waitForLine((l) => l.text === "waves")).kind, "action");
    assert.equal((await bob.waitForLine((l) => l.text === "a notice from matrix")).kind, "notice");

    bob.client.action("#test", "dances");
    bob.client.notice("#test", "a notice from irc");
    const emote = await alice.waitForMessage(roomId, (e) => e.content.body === "dances");
    const notice = await alice.waitForMessage(roomId, (e) => e.content.body === "a notice from irc");
    assert.equal(emote.content.msgtype, "m.emote");
    assert.equal(notice.content.msgtype, "m.notice");
    assert.equal(emote.sender, stack.ghostId("bob"));
  });

  test("a multi-line Matrix message becomes several IRC lines", async () => {
    await alice.sendText(roomId, "line one\nline two\n\nline three");
    await bob.waitForLine((l) => l.text === "line three");
    const texts = bob.lines.filter((l) => l.text.startsWith("line ")).map((l) => l.text);
    assert.deepEqual(texts, ["line one", "line two", "line three"]);
  });

  test("100 messages sent in a burst each way arrive complete and in order", async () => {
    const count = 100;
    const fromMatrix = Array.from({ length: count }, (_, i) => `m2i burst ${i}`);
    // A client sends one after another (each PUT is acknowledged before the next).
    for (const body of fromMatrix) await alice.sendText(roomId, body);
    await bob.waitForLine((l) => l.text === fromMatrix[count - 1], "the last Matrix message", 60_000);
    assert.deepEqual(
      bob.lines.filter((l) => l.text.startsWith("m2i burst ")).map((l) => l.text),
      fromMatrix,
    );

    const fromIrc = Array.from({ length: count }, (_, i) => `i2m burst ${i}`);
    for (const text of fromIrc) bob.say("#test", text);
    await alice.waitForMessage(roomId, (e) => e.content.body === fromIrc[count - 1], 60_000);
    assert.deepEqual(
      alice.messages(roomId, (e) => String(e.content.body).startsWith("i2m burst ")).map((e) => e.content.body),
      fromIrc,
    );
  });

  test("50 Matrix messages sent at once reach IRC complete, in the room's order, none doubled", async () => {
    const bodies = Array.from({ length: 50 }, (_, i) => `at once ${i}`);
    await Promise.all(bodies.map((body) => alice.sendText(roomId, body)));
    const onIrc = () => bob.lines.filter((l) => l.text.startsWith("at once ")).map((l) => l.text);
    await waitFor("all 50 on IRC", () => bodies.every((b) => onIrc().includes(b)), 90_000);
    const inRoom = () => alice.messages(roomId, (e) => String(e.content.body).startsWith("at once ")).map((e) => String(e.content.body));
    await waitFor("alice to see all 50 in the room", () => inRoom().length === 50, 60_000);
    // Sent concurrently, the homeserver fixes their order: IRC shows that order, each once.
    assert.deepEqual(onIrc(), inRoom());
  });

  test("CR/LF in a Matrix message arrive as visible text and execute nothing on IRC", async () => {
    await alice.sendText(roomId, "before\r\nQUIT :bye");
    await alice.sendText(roomId, "x\nPRIVMSG #other :injected");
    await alice.sendText(roomId, "nul\u0000 byte\rJOIN #evil");
    await alice.sendText(roomId, "still here");
    await bob.waitForLine((l) => l.text === "still here" && l.nick === puppetNick, "the marker after the injection attempts");
    const fromAlice = bob.lines.filter((l) => l.nick === puppetNick).map((l) => `${l.target} ${l.text}`);
    for (const expected of ["#test before", "#test QUIT :bye", "#test x", "#test PRIVMSG #other :injected", "#test nul byte", "#test JOIN #evil"]) {
      assert.ok(fromAlice.includes(expected), `bob should see "${expected}" as text; saw ${JSON.stringify(fromAlice.slice(-8))}`);
    }
    assert.ok(!bob.lines.some((l) => l.target === "#other"), "nothing may reach #other");
    assert.ok(!bob.raw.some((l) => / QUIT /.test(l) && l.includes(puppetNick)), "alice's connection must not quit");
    assert.deepEqual((await bob.names("#evil")).length, 0);
  });

  test("the bridge stops cleanly on SIGTERM and says QUIT on IRC", async () => {
    const code = await stack.bridge.stop("SIGTERM");
    assert.equal(code, 0);
    await waitFor("the bot's QUIT", () => bob.raw.find((l) => /^(@\S+ )?:BridgeBot!\S+ QUIT /.test(l)));
    await stack.startBridge();
  });
});
