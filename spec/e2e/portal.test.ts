/**
 * Portal rooms and topics: joining a channel's alias opens a room for it (name, topic and
 * members from IRC); invalid or denied channels are refused; topics go both ways with IRC
 * keeping the authority; an IRC INVITE becomes a Matrix invite.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient, TimelineEvent } from "../harness/matrixClient.js";
import { Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";

describe("portal rooms and topics", { timeout: 180_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let op: IrcTestClient;
  let roomId: string;
  const alias = (channel: string) => `#irc_testnet_${channel}:${stack.synapse.serverName}`;
  const state = (client: MatrixTestClient, room: string, type: string) =>
    client.request<Record<string, unknown>>("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/state/${type}/`);
  const topicEvent = (topic: string) => (e: TimelineEvent) => e.type === "m.room.topic" && e.content.topic === topic;

  before(async () => {
    stack = await Stack.start();
    stack.networkOverrides = { portals: { deny: ["#secret-*"], federate: false, roomVersion: "11" } };
    await stack.startBridge();
    alice = await stack.matrixUser("alice");
    // The first to join a channel is its operator.
    op = await stack.ircUser("op", ["#portal"]);
    op.client.raw("TOPIC", "#portal", "Welcome to the portal");
    await op.waitForRaw("the topic being set", (l) => / TOPIC #portal :Welcome/.test(l));
  });

  after(async () => {
    await stack?.stop();
  });

  test("joining a channel's alias opens its room, with name, topic and members from IRC", async () => {
    roomId = await alice.joinRoom(alias("#portal"));
    assert.equal((await state(alice, roomId, "m.room.name")).name, "#portal");
    assert.equal((await state(alice, roomId, "m.room.topic")).topic, "Welcome to the portal");
    assert.equal((await state(alice, roomId, "m.room.join_rules")).join_rule, "public");
    const create = await state(alice, roomId, "m.room.create");
    assert.equal(create["m.federate"], false, "portals.federate");
    assert.equal(create.room_version, "11", "portals.roomVersion");
    await alice.waitForEvent(roomId, (e) => e.type === "m.room.member" && e.state_key === stack.ghostId("op") && e.content.membership === "join", "op's ghost");

    await alice.sendText(roomId, "hello through the portal");
    const line = await op.waitForLine((l) => l.text === "hello through the portal");
    assert.equal(line.nick, "alice[m]");
    op.say("#portal", "welcome, alice");
    const reply = await alice.waitForMessage(roomId, (e) => e.content.body === "welcome, alice");
    assert.equal(reply.sender, stack.ghostId("op"));
  });

  test("a second alias query for the same channel gives the same room", async () => {
    const again = await alice.joinRoom(alias("#PORTAL"));
    assert.equal(again, roomId);
  });

  test("invalid and denied channels are refused", async () => {
    await assert.rejects(alice.joinRoom(alias("nochannel")), /404/);
    await assert.rejects(alice.joinRoom(alias("#secret-plans")), /404/);
  });

  test("a topic set on IRC is set in Matrix by the setter's ghost", async () => {
    op.client.raw("TOPIC", "#portal", "New topic from IRC");
    const event = await alice.waitForEvent(roomId, topicEvent("New topic from IRC"), "the IRC topic");
    assert.equal(event.sender, stack.ghostId("op"));
  });

  test("a topic set in Matrix by a non-operator is refused by IRC and put back", async () => {
    await alice.setState(roomId, "m.room.topic", { topic: "alice's topic" });
    const notice = await alice.waitForMessage(roomId, (e) => e.content.msgtype === "m.notice" && /topic of #portal/.test(String(e.content.body)));
    assert.match(String(notice.content.body), /not changed/);
    await waitFor("the old topic back", async () => (await state(alice, roomId, "m.room.topic")).topic === "New topic from IRC");
  });

  test("a topic set in Matrix by a channel operator reaches IRC", async () => {
    op.client.raw("MODE", "#portal", "+o", "alice[m]");
    await op.waitForRaw("alice[m] made operator", (l) => /MODE #portal \+o :?alice\[m\]/.test(l));
    await alice.setState(roomId, "m.room.topic", { topic: "alice rules the topic" });
    const line = await op.waitForRaw("the topic from Matrix", (l) => /:alice\[m\]!\S+ TOPIC #portal :alice rules the topic/.test(l));
    assert.ok(line);
  });

  test("an IRC invite of a Matrix user's nick invites them to the channel's room", async () => {
    await op.join("#invited");
    op.client.raw("INVITE", "alice[m]", "#invited");
    const invited = await alice.waitForInvite("#invited's room", (s) => s.some((e) => e.type === "m.room.name" && e.content.name === "#invited"));
    await alice.joinRoom(invited);
    await op.waitForRaw("alice[m] joining #invited", (l) => /:alice\[m\]!\S+ JOIN :?#invited/.test(l));
  });
});
