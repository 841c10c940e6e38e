/**
 * Chanop sync against the real thing: IRC prefix modes become power levels (puppets and
 * ghosts, learnt from NAMES and kept current by MODE), a mass +v is a few events, admins'
 * levels are never lowered, channel modes shape join rule, directory and events_default, a
 * restart sends nothing unchanged, and (matrixToIrcModes) an op's level change in Matrix
 * gives the mode on IRC while a non-op is told why not.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient, TimelineEvent } from "../harness/matrixClient.js";
import { Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";

const MASS = 100;
const massNick = (i: number) => `v${String(i).padStart(3, "0")}`;

describe("chanop sync", { timeout: 240_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let bob: MatrixTestClient;
  let carl: MatrixTestClient;
  let chief: IrcTestClient;
  let elder: IrcTestClient;
  let dave: IrcTestClient;
  let mass: IrcTestClient[] = [];
  let ops: string;
  let mapped: string;
  let weak: string;
  const rooms: string[] = [];
  const alias = (channel: string) => `#irc_testnet_${channel}:${stack.synapse.serverName}`;
  const state = <T = Record<string, unknown>>(room: string, type: string) => alice.request<T>("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/state/${type}/`);
  const levels = (room: string) => state<{ users?: Record<string, number>; events_default?: number }>(room, "m.room.power_levels");
  const waitLevel = (room: string, userId: string, level: number | undefined, timeoutMs = 30_000) =>
    waitFor(`${userId} at level ${level ?? "default"} in ${room}`, async () => (await levels(room)).users?.[userId] === level, timeoutMs, 200);
  const modeSeen = (client: IrcTestClient, pattern: RegExp) => client.waitForRaw(`MODE ${pattern}`, (l) => pattern.test(l));
  const joinedIrc = (nick: string, channel: string, watcher = chief) => watcher.waitForRaw(`${nick} joining ${channel}`, (l) => new RegExp(`:${nick.replace(/[[\]]/g, "\\$&")}!\\S+ JOIN :?${channel}( |$)`, "i").test(l));
  const metricsOf = async () => {
    const text = await (await fetch(`http://127.0.0.1:${stack.bridgePort}/metrics`)).text();
    return Object.fromEntries(text.split("\n").filter((l) => l.startsWith("bridge_")).map((l) => [l.slice(0, l.lastIndexOf(" ")), Number(l.slice(l.lastIndexOf(" ") + 1))])) as Record<string, number>;
  };
  const stateEvents = (room: string, from = 0) => (alice.timelines.get(room) ?? []).slice(from).filter((e: TimelineEvent) => e.state_key !== undefined && e.type !== "m.room.member");

  before(async () => {
    stack = await Stack.start();
    stack.networkOverrides = { chanops: { matrixToIrcModes: true } };
    [alice, bob, carl] = await Promise.all(["alice", "bob", "carl"].map((n) => stack.matrixUser(n)));
    // A mapped room made by alice (admin); the bot may change power levels below its 99.
    mapped = await alice.createRoom({
      name: "Mapped",
      power_level_content_override: { users: { [`@${stack.registration.sender_localpart}:${stack.synapse.serverName}`]: 99 }, events: { "m.room.power_levels": 50 } },
    });
    // A mapped room where the bot has no power: it says so once.
    weak = await bob.createRoom({ name: "Weak" });
    stack.mappings = { "#opsmap": { roomIds: [mapped] }, "#weak": { roomIds: [weak] } };
    // IRC users connect in parallel (InspIRCd welcomes on a one-second tick). The first to
    // join a channel is its operator: chief of #ops, #opsmap and #modes, elder of #later.
    [chief, elder, dave, ...mass] = await Promise.all([stack.ircUser("chief"), stack.ircUser("elder"), stack.ircUser("dave"), ...Array.from({ length: MASS }, (_, i) => stack.ircUser(massNick(i)))]);
    await Promise.all([chief.join("#ops"), chief.join("#opsmap"), chief.join("#modes"), chief.join("#mass"), chief.join("#weak"), elder.join("#later")]);
    await Promise.all([dave.join("#opsmap"), ...mass.map((c) => c.join("#mass"))]);
    await stack.startBridge();
  });

  after(async () => {
    await stack?.stop();
  });

  test("an IRC op's +o on a Matrix user's puppet makes them moderator; +v then -o leaves voice; -v the default", async () => {
    ops = await alice.joinRoom(alias("#ops"));
    rooms.push(ops);
    await joinedIrc("alice[m]", "#ops");
    chief.client.raw("MODE", "#ops", "+o", "alice[m]");
    await waitLevel(ops, alice.userId, 50);
    chief.client.raw("MODE", "#ops", "+v", "alice[m]");
    await modeSeen(chief, /MODE #ops \+v :?alice\[m\]/);
    chief.client.raw("MODE", "#ops", "-o", "alice[m]");
    await waitLevel(ops, alice.userId, 1);
    chief.client.raw("MODE", "#ops", "-v", "alice[m]");
    await waitLevel(ops, alice.userId, undefined);
  });

  test("the ghost of an op in a channel the bot joins later gets the op level from NAMES", async () => {
    const later = await alice.joinRoom(alias("#later"));
    rooms.push(later);
    await waitLevel(later, stack.ghostId("elder"), 50);
    assert.equal((await levels(later)).users?.[stack.ghostId("chief")], undefined, "no one else is raised");
  });

  test(`${MASS} nicks voiced in one MODE burst become a few power-level events`, async () => {
    const room = await alice.joinRoom(alias("#mass"));
    rooms.push(room);
    await waitLevel(room, stack.ghostId("chief"), 50);
    const from = (alice.timelines.get(room) ?? []).length;
    const started = Date.now();
    // InspIRCd takes up to 20 modes per line (ISUPPORT MODES).
    for (let i = 0; i < MASS; i += 20) {
      const nicks = Array.from({ length: Math.min(20, MASS - i) }, (_, j) => massNick(i + j));
      chief.client.raw("MODE", "#mass", `+${"v".repeat(nicks.length)}`, ...nicks);
    }
    await waitFor("every voiced ghost at level 1", async () => {
      const users = (await levels(room)).users ?? {};
      return mass.every((c) => users[stack.ghostId(c.nick)] === 1);
    }, 60_000, 250);
    const events = await waitFor("the power-level events to reach alice", () => {
      const seen = stateEvents(room, from).filter((e) => e.type === "m.room.power_levels");
      return seen.length > 0 && seen;
    });
    console.log(`# ${MASS} voices: ${events.length} power-level event(s), levels matched after ${Date.now() - started} ms`);
    assert.ok(events.length <= 3, `expected at most 3 power-level events, got ${events.length}`);
  });

  test("a level a room admin raised is not lowered by a later -o on IRC", async () => {
    rooms.push(mapped);
    await Promise.all([bob.joinRoom(mapped), carl.joinRoom(mapped)]);
    await Promise.all([joinedIrc("bob[m]", "#opsmap"), joinedIrc("carl[m]", "#opsmap")]);
    chief.client.raw("MODE", "#opsmap", "+o", "bob[m]");
    await waitLevel(mapped, bob.userId, 50);
    const current = await levels(mapped);
    await alice.setState(mapped, "m.room.power_levels", { ...current, users: { ...current.users, [bob.userId]: 60 } });
    // dave's voice comes in the same line: once his ghost has it, the -o was handled too.
    chief.client.raw("MODE", "#opsmap", "-o+v", "bob[m]", "dave");
    await waitLevel(mapped, stack.ghostId("dave"), 1);
    assert.equal((await levels(mapped)).users?.[bob.userId], 60);
  });

  test("with matrixToIrcModes, an op's Matrix user raising someone to 50 gives their puppet +o; a non-op is told why not", async () => {
    await alice.sendText(mapped, "hello"); // alice's puppet joins #opsmap
    await joinedIrc("alice[m]", "#opsmap");
    // dave's voice goes in the same line: once his ghost is back at the default, alice is op for the bridge.
    chief.client.raw("MODE", "#opsmap", "+o-v", "alice[m]", "dave");
    await waitLevel(mapped, stack.ghostId("dave"), undefined);
    let current = await levels(mapped);
    await alice.setState(mapped, "m.room.power_levels", { ...current, users: { ...current.users, [carl.userId]: 50 } });
    await chief.waitForRaw("alice[m] giving carl[m] +o", (l) => /:alice\[m\]!\S+ MODE #opsmap \+o :?carl\[m\]/.test(l));

    current = await levels(mapped);
    await bob.setState(mapped, "m.room.power_levels", { ...current, users: { ...current.users, [stack.ghostId("dave")]: 50 } });
    const told = await bob.waitForMessage(mapped, (e) => e.content.msgtype === "m.notice" && String(e.content.body).startsWith(`${bob.userId}: nothing changed on IRC`));
    assert.match(String(told.content.body), /bob\[m\] is not a channel operator/);
    assert.ok(!chief.raw.some((l) => /MODE #opsmap \+o :?dave/.test(l)), "dave was not given +o");
  });

  test("in a mapped room where the bot may not change power levels, it says so once, in plain words", async () => {
    const told = await bob.waitForMessage(weak, (e) => e.sender.startsWith(`@${stack.registration.sender_localpart}:`) && /needs 100 to change power levels/.test(String(e.content.body)), 30_000);
    assert.match(String(told.content.body), /IRC channel operators .* are not reflected here/);
    chief.client.raw("MODE", "#weak", "+v", "chief");
    await modeSeen(chief, /MODE #weak \+v :?chief/);
    assert.equal(bob.messages(weak, (e) => /needs 100/.test(String(e.content.body))).length, 1);
    assert.equal((await bob.request<{ users?: Record<string, number> }>("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(weak)}/state/m.room.power_levels/`)).users?.[stack.ghostId("chief")], undefined);
  });

  test("+i, +k, +s and +m shape join rule, directory and events_default, and come undone", async () => {
    const room = await alice.joinRoom(alias("#modes"));
    rooms.push(room);
    const joinRule = async () => (await state<{ join_rule: string }>(room, "m.room.join_rules")).join_rule;
    const listed = async () => (await alice.request<{ visibility: string }>("GET", `/_matrix/client/v3/directory/list/room/${encodeURIComponent(room)}`)).visibility;
    const eventsDefault = async () => (await levels(room)).events_default ?? 0;
    const until = (what: string, probe: () => Promise<unknown>, expected: unknown) => waitFor(what, async () => (await probe()) === expected, 30_000, 200);
    await until("the portal listed", listed, "public");

    chief.client.raw("MODE", "#modes", "+i");
    await until("invite-only after +i", joinRule, "invite");
    chief.client.raw("MODE", "#modes", "-i");
    await until("public after -i", joinRule, "public");
    chief.client.raw("MODE", "#modes", "+k", "sesame");
    await until("invite-only after +k", joinRule, "invite");
    chief.client.raw("MODE", "#modes", "-k", "sesame");
    await until("public after -k", joinRule, "public");

    chief.client.raw("MODE", "#modes", "+s");
    await until("unlisted after +s", listed, "private");
    chief.client.raw("MODE", "#modes", "-s");
    await until("listed after -s", listed, "public");

    chief.client.raw("MODE", "#modes", "+m");
    await until("events_default at the voice level after +m", eventsDefault, 1);
    chief.client.raw("MODE", "#modes", "-m");
    await until("events_default back to 0 after -m", eventsDefault, 0);
  });

  test("a restart sends no state event when nothing changed", async () => {
    // alice's sync has caught up with everything before the restart once she sees her own marker in each room.
    await Promise.all(rooms.map(async (r) => {
      const marker = `marker ${r}`;
      await alice.sendText(r, marker);
      await alice.waitForMessage(r, (e) => e.content.body === marker);
    }));
    const before = new Map(rooms.map((r) => [r, (alice.timelines.get(r) ?? []).length]));
    await stack.bridge.stop("SIGTERM");
    await stack.startBridge();
    // Every room's power levels compared with IRC again after the bot rejoined (the metrics are the new process's).
    const checks = await waitFor("every room checked after the restart", async () => {
      const m = await metricsOf();
      const done = (m["bridge_power_level_checks_total{result=\"unchanged\"}"] ?? 0) + (m["bridge_power_level_checks_total{result=\"written\"}"] ?? 0);
      return done >= rooms.length && m;
    }, 60_000, 250);
    assert.equal(checks["bridge_power_level_checks_total{result=\"written\"}"] ?? 0, 0, "no power-level event written");
    assert.equal(checks["bridge_power_level_events_total"] ?? 0, 0);
    assert.equal(Object.keys(checks).filter((k) => k.startsWith("bridge_room_mode_changes_total{")).length, 0, "no join rule or directory change");
    for (const room of rooms) assert.deepEqual(stateEvents(room, before.get(room)).map((e) => e.type), [], `no state event in ${room}`);
  });

  test("with ghostPowerLevels false, an op's ghost stays at the default while puppets still move", async () => {
    await stack.bridge.stop("SIGTERM");
    stack.networkOverrides = { chanops: { matrixToIrcModes: true, ghostPowerLevels: false } };
    await stack.startBridge();
    await elder.join("#later2");
    const room = await alice.joinRoom(alias("#later2"));
    await joinedIrc("alice[m]", "#later2", elder);
    elder.client.raw("MODE", "#later2", "+o", "alice[m]");
    await waitLevel(room, alice.userId, 50);
    assert.equal((await levels(room)).users?.[stack.ghostId("elder")], undefined, "elder's ghost stays at the default");
  });
});
