/**
 * Safe by default, bounded under abuse: users of other servers are refused unless the operator
 * lets them in; an IRC nick opening PM rooms too fast is limited and told once; a user can
 * ignore a nick (kept across restarts); a user who left a PM room is invited back at most once
 * per period; portals opened too fast with !join, and ghosts invited too fast, are refused
 * with a reason.
 * Everything here runs on the default config (no limits lowered for the test).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient, TimelineEvent } from "../harness/matrixClient.js";
import { Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";

describe("abuse bounds", { timeout: 420_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let lobby: string;
  let adminRoom: string;
  let carol: IrcTestClient;
  const body = (e: TimelineEvent) => String(e.content.body);
  const ghostMember = (nick: string) => (s: TimelineEvent[]) => s.some((e) => e.type === "m.room.member" && e.sender === stack.ghostId(nick));

  /** Sends an admin command; resolves with the bot's first notice after it. */
  const command = async (text: string): Promise<string> => {
    const notices = () => alice.messages(adminRoom, (e) => e.sender !== alice.userId && e.content.msgtype === "m.notice");
    const before = notices().length;
    await alice.sendText(adminRoom, text);
    return body(await waitFor(`the answer to ${text}`, () => notices()[before], 30_000));
  };

  /** Waits until alice's sync has caught up with a message she sends now (so anything before it was seen). */
  const syncMarker = async (): Promise<void> => {
    const text = `marker ${Date.now()}`;
    await alice.sendText(adminRoom, text);
    await alice.waitForMessage(adminRoom, (e) => body(e) === text);
  };

  const metric = async (name: string, labels: string): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${stack.bridgePort}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && labels.split(",").every((p) => l.includes(p)));
    return line ? Number(line.split(" ").pop()) : 0;
  };

  before(async () => {
    stack = await Stack.start();
    alice = await stack.matrixUser("alice");
    lobby = await alice.createRoom({ name: "Lobby" });
    stack.mappings = { "#lobby": { roomIds: [lobby] } };
    await stack.startBridge();
    carol = await stack.ircUser("carol", ["#lobby"]);
    await alice.sendText(lobby, "hi lobby");
    await carol.waitForLine((l) => l.text === "hi lobby");
    adminRoom = await alice.createRoom({ preset: "trusted_private_chat", is_direct: true, invite: [`@ircbot:${stack.synapse.serverName}`] });
    await alice.waitForMessage(adminRoom, (e) => /This is your admin room/.test(body(e)));
  });

  after(async () => {
    await stack?.stop();
  });

  test("by default a user of another server is refused and told why; nothing of theirs reaches IRC", async () => {
    // Synapse here does not federate, so the remote user's event is sent to the bridge as
    // Synapse would: an appservice transaction with the homeserver's token.
    const remote = "@mallory:other.example";
    const res = await fetch(`http://127.0.0.1:${stack.bridgePort}/_matrix/app/v1/transactions/fake-remote-1`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${stack.registration.hs_token}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        events: [{ type: "m.room.message", room_id: lobby, sender: remote, event_id: "$fake-remote-1", origin_server_ts: Date.now(), content: { msgtype: "m.text", body: "hello from afar" } }],
      }),
    });
    assert.equal(res.status, 200);
    const notice = await alice.waitForMessage(lobby, (e) => e.content.msgtype === "m.notice" && body(e).startsWith(`${remote}:`), 30_000);
    assert.match(body(notice), /not allowed to use this bridge/);
    // A local user's message sent after it reaches IRC, and the remote one never did.
    await alice.sendText(lobby, "after the remote one");
    await carol.waitForLine((l) => l.text === "after the remote one");
    assert.ok(!carol.lines.some((l) => l.text.includes("hello from afar")), "the remote user's message reached IRC");
  });

  test("an IRC nick opening PM rooms with many puppets is limited, and told once", async () => {
    const users = await Promise.all([1, 2, 3, 4, 5, 6, 7].map((i) => stack.matrixUser(`pmuser${i}`)));
    await Promise.all(users.map((u) => u.joinRoom(lobby)));
    await Promise.all(users.map((u, i) => u.sendText(lobby, `hello from pmuser${i + 1}`)));
    await Promise.all(users.map((_u, i) => carol.waitForLine((l) => l.text === `hello from pmuser${i + 1}`, `pmuser${i + 1}'s line`, 60_000)));
    const spammer = await stack.ircUser("spammer");
    const before = await metric("bridge_rate_limited_total", 'kind="pm_room"');
    for (let i = 0; i < users.length; i++) spammer.say(`pmuser${i + 1}[m]`, `buy now ${i + 1}`);
    const notice = await spammer.waitForLine((l) => l.kind === "notice" && /too (fast|many)/i.test(l.text), "a rate-limit NOTICE", 60_000);
    assert.match(notice.text, /private/i);
    // More lines inside the window: no more rooms, and no second NOTICE.
    assert.ok(users.some((_u, i) => notice.nick === `pmuser${i + 1}[m]`), "told by the puppet it PMed");
    for (let i = 0; i < users.length; i++) spammer.say(`pmuser${i + 1}[m]`, `buy now again ${i + 1}`);
    await waitFor("the refusals to be counted", async () => (await metric("bridge_rate_limited_total", 'kind="pm_room"')) >= before + 4, 60_000);
    // The default burst is 5: five users are invited, the other two are not. Each user's sync
    // is brought up to date (a line of their own seen) before counting.
    const invited = () => users.filter((u) => [...u.inviteState.values()].some(ghostMember("spammer"))).length;
    await waitFor("five users invited by the spammer", () => invited() >= 5, 60_000);
    await Promise.all(
      users.map(async (u, i) => {
        const text = `synced ${i + 1}`;
        await u.sendText(lobby, text);
        await u.waitForMessage(lobby, (e) => body(e) === text);
      }),
    );
    assert.equal(invited(), 5);
    assert.equal(spammer.lines.filter((l) => l.kind === "notice" && /too (fast|many)/i.test(l.text)).length, 1, "told once per window");
  });

  test("a Matrix user inviting ghosts too fast: the ghost over the limit declines, saying why", async () => {
    const bob = await stack.matrixUser("bob");
    const rooms = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => bob.createRoom({ preset: "trusted_private_chat", is_direct: true, invite: [stack.ghostId(`ghost${i}`)] })));
    const outcome = (roomId: string, i: number) =>
      bob.waitForEvent(roomId, (e) => e.type === "m.room.member" && e.state_key === stack.ghostId(`ghost${i + 1}`) && e.content.membership !== "invite", `ghost${i + 1} answering`, 60_000);
    const answers = await Promise.all(rooms.map(outcome));
    assert.equal(answers.filter((e) => e.content.membership === "join").length, 5);
    const declined = answers.filter((e) => e.content.membership === "leave");
    assert.equal(declined.length, 1);
    assert.match(String(declined[0].content.reason), /too fast/);
  });

  test("!ignore stops a nick's PMs (across a restart, whatever the nick's case); !unignore restores them", async () => {
    carol.say("alice[m]", "first, before ignoring");
    const pmRoom = await alice.waitForInvite("carol's PM room", ghostMember("carol"));
    await alice.joinRoom(pmRoom);
    await alice.waitForMessage(pmRoom, (e) => body(e) === "first, before ignoring");

    assert.match(await command("!ignore CAROL"), /You now ignore CAROL/);
    assert.match(await command("!ignore"), /CAROL/);
    assert.ok((await command("!help")).includes("!ignore"), "!help lists !ignore");

    await stack.bridge.stop();
    await stack.startBridge();
    await waitFor("alice's puppet back in #lobby", async () => (await carol.names("#lobby")).includes("alice[m]"), 60_000);

    carol.say("alice[m]", "while ignored");
    assert.match(await command("!unignore carol"), /You no longer ignore carol/);
    carol.say("alice[m]", "after unignoring");
    await alice.waitForMessage(pmRoom, (e) => body(e) === "after unignoring", 30_000);
    assert.ok(!alice.messages(pmRoom).some((e) => body(e) === "while ignored"), "an ignored nick's PM reached the room");
  });

  test("a user who left a PM room is invited back at most once per period; the sender is told once", async () => {
    const dave = await stack.ircUser("dave");
    dave.say("alice[m]", "one");
    const pmRoom = await alice.waitForInvite("dave's PM room", ghostMember("dave"));
    await alice.joinRoom(pmRoom);
    await alice.waitForMessage(pmRoom, (e) => body(e) === "one");
    const leave = () => alice.request("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(pmRoom)}/leave`, {});
    await leave();

    alice.inviteState.clear();
    dave.say("alice[m]", "two");
    await alice.waitForInvite("dave's PM room again", (_s, roomId) => roomId === pmRoom);
    await leave(); // rejects the invite

    alice.inviteState.clear();
    dave.say("alice[m]", "three");
    const told = await dave.waitForLine((l) => l.kind === "notice" && /not reading/i.test(l.text), "a not-reading NOTICE", 30_000);
    assert.equal(told.nick, "alice[m]");
    dave.say("alice[m]", "four");
    await waitFor("the second drop to be counted", async () => (await metric("bridge_pms_dropped_total", 'reason="not_in_room"')) >= 2, 30_000);
    await syncMarker();
    assert.equal(alice.inviteState.size, 0, "invited again within the period");
    assert.equal(dave.lines.filter((l) => l.kind === "notice" && /not reading/i.test(l.text)).length, 1, "told once per period");
  });

  test("portal rooms opened too fast with !join are refused with a reason", async () => {
    const notices = () => alice.messages(adminRoom, (e) => e.sender !== alice.userId && e.content.msgtype === "m.notice");
    const before = notices().length;
    // Sent at once, as a script would: the default burst is 5 rooms, then 2 a minute.
    await Promise.all([1, 2, 3, 4, 5, 6].map((i) => alice.sendText(adminRoom, `!join #flood${i}`)));
    const answers = (await waitFor("six answers", () => notices().length >= before + 6 && notices().slice(before), 90_000)).map(body);
    assert.equal(answers.filter((a) => /Invited you/.test(a)).length, 5, answers.join("\n"));
    assert.equal(answers.filter((a) => /too (fast|many)/i.test(a)).length, 1, answers.join("\n"));
    assert.ok((await metric("bridge_rate_limited_total", 'kind="portal"')) >= 1);
  });
});
