/**
 * IRCv3 interactions end to end (issue 13), against a real Synapse and a real InspIRCd with
 * `ircv3_ctctags` (client tags, TAGMSG): reactions and un-reactions both ways, typing both
 * ways, and no reaction at all where the server takes no client tags. InspIRCd 3 does not
 * offer `draft/message-redaction`, so REDACT is tested against the scripted HostileIrcd
 * (which offers it, with message-tags and echo-message), and in spec/unit/ircv3.test.ts.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { HostileIrcd } from "../harness/hostileIrcd.js";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient, TimelineEvent } from "../harness/matrixClient.js";
import { Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";

const puppet = "alice[m]";

/** The msgid the bridge linked to a Matrix event (from its message links, once written). */
function msgidOfEvent(stack: Stack, eventId: string): Promise<string> {
  return waitFor(`the msgid of ${eventId}`, async () => (await stack.storedMessageLinks()).find((l) => l.eventId === eventId)?.msgid);
}

const redactsOf = (e: TimelineEvent) => (e.content.redacts as string | undefined) ?? (e as unknown as { redacts?: string }).redacts;

describe("IRCv3 interactions", { timeout: 300_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let bob: IrcTestClient;
  let roomId: string;
  let warmUpEvent: string;

  before(async () => {
    stack = await Stack.start();
    alice = await stack.matrixUser("alice");
    roomId = await alice.createRoom({ name: "IRCv3", preset: "public_chat" });
    stack.mappings = { "#test": { roomIds: [roomId] } };
    await stack.startBridge();
    bob = await stack.ircUser("bob", ["#test"]);
    warmUpEvent = await alice.sendText(roomId, "warming up");
    await bob.waitForLine((l) => l.nick === puppet && l.text === "warming up", "alice's first line");
  });

  after(async () => {
    await stack?.stop();
  });

  test("a Matrix reaction on a bridged IRC line reaches IRC as TAGMSG +draft/react with +reply, and un-reacting as +draft/unreact", async () => {
    bob.say("#test", "react to me");
    const line = await alice.waitForMessage(roomId, (e) => e.content.body === "react to me");
    const msgid = await msgidOfEvent(stack, line.event_id);
    const reaction = await alice.send(roomId, { "m.relates_to": { rel_type: "m.annotation", event_id: line.event_id, key: "👍" } }, "m.reaction");
    const react = await waitFor("bob to see alice's react TAGMSG", () => bob.tagmsgsFrom(puppet).find((t) => t.tags["+draft/react"] === "👍"));
    assert.match(react.line, / TAGMSG :?#test$/);
    assert.equal(react.tags["+draft/reply"], msgid);
    assert.equal(react.tags["+reply"], msgid);

    await alice.redact(roomId, reaction);
    const unreact = await waitFor("bob to see alice's unreact TAGMSG", () => bob.tagmsgsFrom(puppet).find((t) => t.tags["+draft/unreact"] === "👍"));
    assert.equal(unreact.tags["+draft/reply"], msgid);
    // Nothing of it became text on IRC.
    assert.equal(bob.lines.filter((l) => l.text.includes("👍")).length, 0);
  });

  test("an IRC react TAGMSG arrives as m.reaction from the ghost on the right event, and +draft/unreact redacts it", async () => {
    const msgid = await msgidOfEvent(stack, warmUpEvent);
    bob.tagmsg("#test", { "+draft/react": "🎉", "+draft/reply": msgid });
    const reaction = await alice.waitForEvent(roomId, (e) => e.type === "m.reaction" && e.sender === stack.ghostId("bob"), "bob's reaction");
    assert.deepEqual(reaction.content["m.relates_to"], { rel_type: "m.annotation", event_id: warmUpEvent, key: "🎉" });

    bob.tagmsg("#test", { "+draft/unreact": "🎉", "+reply": msgid });
    const redaction = await alice.waitForEvent(roomId, (e) => e.type === "m.room.redaction" && redactsOf(e) === reaction.event_id, "the redaction of bob's reaction");
    assert.equal(redaction.sender, stack.ghostId("bob"));
  });

  test("Matrix typing reaches IRC as +typing=active, then done", async () => {
    const before = bob.tagmsgsFrom(puppet).length;
    await alice.setTyping(roomId, true);
    const active = await waitFor("bob to see alice typing", () => bob.tagmsgsFrom(puppet).slice(before).find((t) => t.tags["+typing"] === "active"));
    assert.match(active.line, / TAGMSG :?#test$/);
    await alice.setTyping(roomId, false);
    await waitFor("bob to see alice stop typing", () => bob.tagmsgsFrom(puppet).slice(before).find((t) => t.tags["+typing"] === "done"));
  });

  test("IRC typing shows in Matrix as the ghost typing, and done stops it", async () => {
    const ghost = stack.ghostId("bob");
    bob.tagmsg("#test", { "+typing": "active" });
    await waitFor("alice to see bob typing", () => alice.typing.get(roomId)?.includes(ghost), 30_000);
    bob.tagmsg("#test", { "+typing": "done" });
    await waitFor("alice to see bob stop typing", () => alice.typing.get(roomId) && !alice.typing.get(roomId)!.includes(ghost), 30_000);
  });

  test("IRC typing expires by itself (active: 6 s) and stops when the typist's line arrives (paused would last 30 s)", async () => {
    const ghost = stack.ghostId("bob");
    const typing = () => alice.typing.get(roomId)?.includes(ghost) ?? false;
    bob.tagmsg("#test", { "+typing": "active" });
    await waitFor("alice to see bob typing", typing, 30_000);
    const seenAt = Date.now();
    await waitFor("bob's typing to expire without done", () => !typing(), 30_000);
    assert.ok(Date.now() - seenAt >= 3_000, `expired after ${Date.now() - seenAt} ms, not about 6 s`);

    bob.tagmsg("#test", { "+typing": "paused" });
    await waitFor("alice to see bob typing (paused)", typing, 30_000);
    const pausedAt = Date.now();
    bob.say("#test", "there it is");
    await alice.waitForMessage(roomId, (e) => e.content.body === "there it is");
    await waitFor("bob's typing to stop with his line", () => !typing(), 20_000);
    assert.ok(Date.now() - pausedAt < 30_000);
  });
});

describe("IRCv3 interactions without client tags (no ircv3_ctctags)", { timeout: 300_000 }, () => {
  let stack: Stack;

  after(async () => {
    await stack?.stop();
  });

  test("a Matrix reaction sends nothing to IRC: no TAGMSG, no text", async () => {
    stack = await Stack.start({ ircdWithoutModules: ["ircv3_ctctags"] });
    const alice = await stack.matrixUser("alice");
    const roomId = await alice.createRoom({ name: "Plain", preset: "public_chat" });
    stack.mappings = { "#plain": { roomIds: [roomId] } };
    await stack.startBridge();
    const bob = await stack.ircUser("bob", ["#plain"]);
    await alice.sendText(roomId, "hello");
    await bob.waitForLine((l) => l.nick === puppet && l.text === "hello", "alice's first line");
    bob.say("#plain", "react to me");
    const line = await alice.waitForMessage(roomId, (e) => e.content.body === "react to me");
    await alice.send(roomId, { "m.relates_to": { rel_type: "m.annotation", event_id: line.event_id, key: "👍" } }, "m.reaction");
    await alice.setTyping(roomId, true);
    // A later message from the same room is the bound: whatever the reaction caused came first.
    await alice.sendText(roomId, "after the reaction");
    await bob.waitForLine((l) => l.nick === puppet && l.text === "after the reaction", "alice's later line");
    await alice.setTyping(roomId, false);
    assert.deepEqual(bob.raw.filter((l) => / TAGMSG /.test(l)), []);
    assert.deepEqual(bob.lines.filter((l) => l.text.includes("👍")), []);
  });
});

describe("REDACT where the server offers draft/message-redaction (scripted server)", { timeout: 300_000 }, () => {
  let stack: Stack;
  let ircd: HostileIrcd;

  after(async () => {
    await stack?.stop();
    await ircd?.stop();
  });

  test("a Matrix redaction of a bridged line is REDACT from the puppet; an IRC REDACT redacts the line in Matrix", async () => {
    ircd = new HostileIrcd(["carol"], ["message-tags", "echo-message", "draft/message-redaction"]);
    await ircd.start();
    stack = await Stack.start({ ircServer: ircd });
    const alice = await stack.matrixUser("alice");
    const roomId = await alice.createRoom({ name: "Redactions" });
    stack.mappings = { "#chan": { roomIds: [roomId] } };
    await stack.startBridge();
    await ircd.waitForJoin("BridgeBot", "#chan");
    await waitFor("the bot in the room", async () => (await alice.request<{ joined: Record<string, unknown> }>("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/joined_members`)).joined[`@ircbot:${stack.synapse.serverName}`]);

    const mine = await alice.sendText(roomId, "I take this back");
    const puppetClient = await ircd.waitForJoin(puppet, "#chan");
    await waitFor("alice's line on IRC", () => puppetClient.received.some((l) => l.endsWith(":I take this back")));
    const msgid = await msgidOfEvent(stack, mine);
    await alice.redact(roomId, mine, "wrong channel");
    await waitFor("the puppet's REDACT", () => puppetClient.received.find((l) => l === `REDACT #chan ${msgid} :wrong channel`));

    ircd.sendLine("#chan", "@msgid=carol-1 :carol!c@carol.host PRIVMSG #chan :oops, wrong window");
    const line = await alice.waitForMessage(roomId, (e) => e.content.body === "oops, wrong window");
    ircd.sendLine("#chan", ":carol!c@carol.host REDACT #chan carol-1 :sorry");
    const redaction = await alice.waitForEvent(roomId, (e) => e.type === "m.room.redaction" && redactsOf(e) === line.event_id, "the redaction of carol's line");
    assert.equal(redaction.sender, stack.ghostId("carol"));
    assert.equal(redaction.content.reason, "sorry");
  });
});

describe("a server with msgids but no message-tags (scripted server)", { timeout: 300_000 }, () => {
  let stack: Stack;
  let ircd: HostileIrcd;

  after(async () => {
    await stack?.stop();
    await ircd?.stop();
  });

  test("a reaction to a line the bridge knows the msgid of sends nothing: no TAGMSG, no text; typing neither", async () => {
    // echo-message gives the puppet's line a msgid (so a reaction has a target) while client tags are not on.
    ircd = new HostileIrcd(["carol"], ["echo-message"]);
    await ircd.start();
    stack = await Stack.start({ ircServer: ircd });
    const alice = await stack.matrixUser("alice");
    const roomId = await alice.createRoom({ name: "No tags" });
    stack.mappings = { "#chan": { roomIds: [roomId] } };
    await stack.startBridge();
    await ircd.waitForJoin("BridgeBot", "#chan");
    await waitFor("the bot in the room", async () => (await alice.request<{ joined: Record<string, unknown> }>("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/joined_members`)).joined[`@ircbot:${stack.synapse.serverName}`]);
    const mine = await alice.sendText(roomId, "react to my own line");
    const puppetClient = await ircd.waitForJoin(puppet, "#chan");
    await msgidOfEvent(stack, mine);
    await alice.send(roomId, { "m.relates_to": { rel_type: "m.annotation", event_id: mine, key: "👍" } }, "m.reaction");
    await alice.setTyping(roomId, true);
    await alice.sendText(roomId, "after the reaction");
    await waitFor("alice's later line on IRC", () => puppetClient.received.some((l) => l.endsWith(":after the reaction")));
    await alice.setTyping(roomId, false);
    await alice.sendText(roomId, "after typing");
    await waitFor("alice's last line on IRC", () => puppetClient.received.some((l) => l.endsWith(":after typing")));
    assert.deepEqual(puppetClient.received.filter((l) => /TAGMSG|👍/.test(l)), []);
  });
});
