/**
 * Private messages both ways, in invite-only rooms: IRC → Matrix opens a room and invites the
 * Matrix user (again after they left); Matrix → IRC starts by inviting a ghost; a PM to a nick
 * that is not on IRC gets a clear notice.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient, TimelineEvent } from "../harness/matrixClient.js";
import { Stack } from "../harness/stack.js";

describe("private messages", { timeout: 180_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let carol: IrcTestClient;
  let pmRoom: string;
  const fromCarol = (s: TimelineEvent[]) => s.some((e) => e.type === "m.room.member" && e.sender === stack.ghostId("carol"));

  before(async () => {
    stack = await Stack.start();
    alice = await stack.matrixUser("alice");
    const roomId = await alice.createRoom({ name: "Lobby" });
    stack.mappings = { "#lobby": { roomIds: [roomId] } };
    await stack.startBridge();
    carol = await stack.ircUser("carol", ["#lobby"]);
    // alice's puppet connects when she first speaks.
    await alice.sendText(roomId, "hi lobby");
    await carol.waitForLine((l) => l.text === "hi lobby");
  });

  after(async () => {
    await stack?.stop();
  });

  test("an IRC user's PM opens an invite-only room; the reply goes back to them", async () => {
    carol.say("alice[m]", "psst, alice");
    pmRoom = await alice.waitForInvite("carol's PM room", fromCarol);
    await alice.joinRoom(pmRoom);
    const message = await alice.waitForMessage(pmRoom, (e) => e.content.body === "psst, alice");
    assert.equal(message.sender, stack.ghostId("carol"));
    const rules = await alice.request<{ join_rule: string }>("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(pmRoom)}/state/m.room.join_rules/`);
    assert.equal(rules.join_rule, "invite");

    await alice.sendText(pmRoom, "yes, carol?");
    const reply = await carol.waitForLine((l) => l.text === "yes, carol?");
    assert.equal(reply.nick, "alice[m]");
    assert.equal(reply.target, "carol");
  });

  test("after the Matrix user left the PM room, the next PM invites them again before it is delivered", async () => {
    await alice.request("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(pmRoom)}/leave`, {});
    alice.inviteState.clear();
    carol.say("alice[m]", "are you still there?");
    const again = await alice.waitForInvite("carol's PM room again", fromCarol);
    await alice.joinRoom(again);
    const message = await alice.waitForMessage(again, (e) => e.content.body === "are you still there?");
    assert.equal(message.sender, stack.ghostId("carol"));
  });

  test("a Matrix user inviting a ghost starts a PM with that nick on IRC; the ghost keeps the nick's case", async () => {
    const dave = await stack.ircUser("Dave");
    const dm = await alice.createRoom({ preset: "trusted_private_chat", is_direct: true, invite: [stack.ghostId("Dave")] });
    const joined = await alice.waitForEvent(dm, (e) => e.type === "m.room.member" && e.state_key === stack.ghostId("Dave") && e.content.membership === "join", "Dave's ghost joining");
    assert.equal(joined.content.displayname, "Dave", "named as IRC writes the nick, not as the user ID folds it");
    await alice.sendText(dm, "hello dave, from Matrix");
    const line = await dave.waitForLine((l) => l.text === "hello dave, from Matrix");
    assert.equal(line.nick, "alice[m]");
    dave.say("alice[m]", "hello alice, from IRC");
    const answer = await alice.waitForMessage(dm, (e) => e.content.body === "hello alice, from IRC");
    assert.equal(answer.sender, stack.ghostId("Dave"));
    assert.equal(await alice.displayName(stack.ghostId("Dave")), "Dave");
  });

  test("a PM to a nick that is not on IRC gets a clear notice", async () => {
    const dm = await alice.createRoom({ preset: "trusted_private_chat", is_direct: true, invite: [stack.ghostId("nobody")] });
    const offline = await alice.waitForMessage(dm, (e) => e.content.msgtype === "m.notice" && /not on TestNet/.test(String(e.content.body)));
    assert.equal(offline.sender, stack.ghostId("nobody"));
    await alice.sendText(dm, "anyone there?");
    const notice = await alice.waitForMessage(dm, (e) => e.content.msgtype === "m.notice" && /not delivered/.test(String(e.content.body)));
    assert.match(String(notice.content.body), /nobody is not on TestNet right now/);
  });
});
