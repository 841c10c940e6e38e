/**
 * Provisioning by room command: a Matrix moderator bridges their own room to an IRC channel
 * with `!irc link`, and the bridge asks a channel operator by PM. Approval (messages flow both
 * ways, the room's power levels untouched), refusal, the refused cases with their reasons, a
 * bridge restart while a request is pending, a timeout, and unlinking (by a moderator, and by
 * the op with `!unlink` in a PM to the bot). One Stack for the whole file.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { IrcTestClient, SeenLine } from "../harness/ircClient.js";
import type { MatrixTestClient, TimelineEvent } from "../harness/matrixClient.js";
import { Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";

describe("provisioning: bridging an existing room with a channel operator's approval", { timeout: 300_000 }, () => {
  let stack: Stack;
  let mod: MatrixTestClient;
  let bob: MatrixTestClient;
  let chief: IrcTestClient;
  let dave: IrcTestClient;
  let botId: string;
  /** The room linked in the approval test, the one whose request is refused, and the one for the timeout. */
  let roomA: string;
  let roomB: string;
  let roomC: string;
  let plEvents: number;

  const state = <T = Record<string, unknown>>(room: string, type: string, key = "") =>
    mod.request<T>("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/state/${type}/${encodeURIComponent(key)}`);
  const bridging = (room: string, channel: string) => state<{ status?: string }>(room, "m.room.bridging", `irc://testnet/${channel}`).catch(() => null);
  const botNotices = (room: string) => mod.messages(room, (e) => e.sender === botId && e.content.msgtype === "m.notice");
  /** Sends a room command and returns the bot's first notice after it that matches. */
  const command = async (client: MatrixTestClient, room: string, text: string, answer: RegExp, timeoutMs = 30_000): Promise<string> => {
    const from = botNotices(room).length;
    await client.sendText(room, text);
    const notice = await waitFor(`the bot's answer to "${text}" matching ${answer}`, () => botNotices(room).slice(from).find((e) => answer.test(String(e.content.body))), timeoutMs);
    return String(notice.content.body);
  };
  const pmFromBot = (client: IrcTestClient, match: RegExp, from = 0) =>
    waitFor(`${client.nick} to get a PM from the bot matching ${match}`, () => client.lines.slice(from).find((l: SeenLine) => l.nick === "BridgeBot" && l.target === client.nick && match.test(l.text)), 30_000);
  /** A room of mod's with bob in it, the bot at 50 (it may send state, not power levels), and the bot invited. */
  const moderatedRoom = async (name: string): Promise<string> => {
    const room = await mod.createRoom({ name, power_level_content_override: { users: { [botId]: 50 } } });
    await bob.joinRoom(room);
    await mod.request("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/invite`, { user_id: botId });
    await mod.waitForEvent(room, (e) => e.type === "m.room.member" && e.state_key === botId && e.content.membership === "join", "the bot joining");
    return room;
  };
  const botJoinedIrc = (channel: string, watcher = chief) => watcher.waitForRaw(`BridgeBot joining ${channel}`, (l) => new RegExp(`:BridgeBot!\\S+ JOIN :?${channel}( |$)`, "i").test(l));

  before(async () => {
    stack = await Stack.start();
    botId = `@${stack.registration.sender_localpart}:${stack.synapse.serverName}`;
    await stack.startBridge();
    [mod, bob] = await Promise.all([stack.matrixUser("mod"), stack.matrixUser("bob")]);
    [chief, dave] = await Promise.all([stack.ircUser("chief"), stack.ircUser("dave")]);
    // The first to join a channel is its operator: chief of all of them; dave is a plain member.
    await Promise.all(["#plumb", "#refuse", "#two", "#three", "#slow"].map((c) => chief.join(c)));
    await Promise.all([dave.join("#plumb"), dave.join("#refuse")]);
  });

  after(async () => {
    await stack?.stop();
  });

  test("a moderator links their room; the op approves by PM; messages flow both ways; power levels unchanged", async () => {
    roomA = await moderatedRoom("Plumbed room");
    const levelsBefore = await state(roomA, "m.room.power_levels");
    plEvents = (mod.timelines.get(roomA) ?? []).filter((e) => e.type === "m.room.power_levels").length;

    // Without an op nick, the bot lists the channel's operators.
    const ops = await command(mod, roomA, "!irc link testnet #plumb", /operator/i);
    assert.match(ops, /chief/);
    assert.doesNotMatch(ops, /dave/);

    const asked = await command(mod, roomA, "!irc link testnet #plumb chief", /asked chief/i);
    assert.match(asked, /chief/);
    const pm = await pmFromBot(chief, /#plumb/);
    assert.match(pm.text, new RegExp(mod.userId.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    assert.match(pm.text, /Plumbed room/);
    assert.match(pm.text, new RegExp(`https://matrix.to/#/${roomA.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
    assert.match(pm.text, /yes/);
    assert.equal((await bridging(roomA, "#plumb"))?.status, "pending");

    // Anything but yes or no gets a one-line reminder.
    const seen = chief.lines.length;
    chief.say("BridgeBot", "what is this?");
    await pmFromBot(chief, /yes.*no/i, seen);

    chief.say("BridgeBot", "yes");
    await waitFor("the room told it is linked", () => botNotices(roomA).find((e) => /linked/i.test(String(e.content.body)) && /#plumb/.test(String(e.content.body))), 30_000);
    await botJoinedIrc("#plumb");
    await waitFor("m.room.bridging success", async () => (await bridging(roomA, "#plumb"))?.status === "success");
    const bridge = await state<{ bridgebot?: string }>(roomA, "m.bridge", "irc/testnet/#plumb");
    assert.equal(bridge.bridgebot, botId);

    await mod.sendText(roomA, "hello from the plumbed room");
    const line = await chief.waitForLine((l) => l.text === "hello from the plumbed room", "mod's line");
    assert.equal(line.nick, "mod[m]");
    chief.say("#plumb", "hello from IRC");
    const back = await mod.waitForMessage(roomA, (e) => e.content.body === "hello from IRC");
    assert.equal(back.sender, stack.ghostId("chief"));

    // The room's power levels stay the moderators': not one event, the same content.
    assert.deepEqual(await state(roomA, "m.room.power_levels"), levelsBefore);
    assert.equal((mod.timelines.get(roomA) ?? []).filter((e: TimelineEvent) => e.type === "m.room.power_levels").length, plEvents);
  });

  test("the op refuses with no: nothing is linked, the room is told, m.room.bridging says failure", async () => {
    roomB = await moderatedRoom("Second room");
    await command(mod, roomB, "!irc link testnet #refuse chief", /asked chief/i);
    const from = chief.lines.length;
    await pmFromBot(chief, /#refuse/);
    chief.say("BridgeBot", "n");
    await waitFor("the room told of the refusal", () => botNotices(roomB).find((e) => /refused/i.test(String(e.content.body))));
    assert.equal((await bridging(roomB, "#refuse"))?.status, "failure");
    assert.ok(!(await chief.names("#refuse")).includes("BridgeBot"), "the bot did not join #refuse");
    assert.match(await command(mod, roomB, "!irc links", /link/i), /not linked|no /i);
    assert.ok(chief.lines.slice(from).some((l) => l.nick === "BridgeBot"));
  });

  test("refused requests say why: no power, not an op, unknown network, already linked, op already asked", async () => {
    assert.match(await command(bob, roomB, "!irc link testnet #refuse chief", /power/i), /power/i);
    assert.match(await command(mod, roomB, "!irc link testnet #refuse dave", /operator/i), /dave/);
    assert.match(await command(mod, roomB, "!irc link nonet #refuse chief", /network/i), /nonet/);
    assert.match(await command(mod, roomA, "!irc link testnet #plumb chief", /already/i), /#plumb/);
    await command(mod, roomB, "!irc link testnet #two chief", /asked chief/i);
    assert.match(await command(mod, roomB, "!irc link testnet #three chief", /pending|already/i), /chief/);
  });

  test("a request pending across a bridge restart is approved after it", async () => {
    await stack.bridge.stop();
    // A short deadline from now on (the pending request keeps the one it was made with).
    stack.configOverrides = { provisioning: { requestTimeoutSeconds: 5 } };
    await stack.startBridge();
    chief.say("BridgeBot", "yes");
    await waitFor("room B told #two is linked", () => botNotices(roomB).find((e) => /linked/i.test(String(e.content.body)) && /#two/.test(String(e.content.body))), 40_000);
    await botJoinedIrc("#two");
    assert.equal((await bridging(roomB, "#two"))?.status, "success");
  });

  test("a request nobody answers times out", async () => {
    roomC = await moderatedRoom("Slow room");
    await command(mod, roomC, "!irc link testnet #slow chief", /asked chief/i);
    await waitFor("the room told the request timed out", () => botNotices(roomC).find((e) => /no answer|timed out|expired/i.test(String(e.content.body))), 30_000);
    assert.equal((await bridging(roomC, "#slow"))?.status, "failure");
    assert.match(await command(mod, roomC, "!irc links", /link/i), /not linked|no /i);
  });

  test("a moderator unlinks: puppets part, ghosts and the bot leave, the room is told", async () => {
    const body = await command(mod, roomA, "!irc unlink testnet #plumb", /unlinked/i);
    assert.match(body, /#plumb/);
    await chief.waitForRaw("BridgeBot parting #plumb", (l) => /:BridgeBot!\S+ PART #plumb/i.test(l));
    await chief.waitForRaw("mod[m] parting #plumb", (l) => /:mod\[m\]!\S+ PART #plumb/i.test(l));
    await mod.waitForEvent(roomA, (e) => e.type === "m.room.member" && e.state_key === stack.ghostId("chief") && e.content.membership === "leave", "chief's ghost leaving");
    await mod.waitForEvent(roomA, (e) => e.type === "m.room.member" && e.state_key === botId && e.content.membership === "leave", "the bot leaving");
  });

  test("the op unlinks with !unlink in a PM to the bot", async () => {
    const from = chief.lines.length;
    chief.say("BridgeBot", "!unlink #two");
    await waitFor("room B told #two is unlinked", () => botNotices(roomB).find((e) => /unlinked/i.test(String(e.content.body)) && /#two/.test(String(e.content.body))), 30_000);
    await pmFromBot(chief, /unlinked/i, from);
    await chief.waitForRaw("BridgeBot parting #two", (l) => /:BridgeBot!\S+ PART #two/i.test(l));
  });
});
