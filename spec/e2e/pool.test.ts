/**
 * The connection pool against real Synapse and InspIRCd: one connection per Matrix user,
 * exactly-once delivery with many connections in a channel (with msgids, and by nomination
 * and hand-over without them), recovery after the IRCd restarts, nick collisions and limits.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { IRC_OPER } from "../harness/inspircd.js";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient } from "../harness/matrixClient.js";
import { Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";

const USERS = 20;
const RATE = 5;

async function operKill(oper: IrcTestClient, nick: string): Promise<void> {
  oper.client.raw("OPER", IRC_OPER.name, IRC_OPER.password);
  await oper.waitForRaw("RPL_YOUREOPER", (l) => / 381 /.test(l));
  oper.client.raw("KILL", nick, "killed by the test");
}

/** The bridge's count of channel lines dropped as copies (from its Prometheus metrics). */
async function deduplicated(stack: Stack): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${stack.bridgePort}/metrics`)).text();
  return Number(/^bridge_irc_lines_deduplicated_total\{network="testnet"\} (\d+)/m.exec(text)?.[1] ?? 0);
}

const bodies = (client: MatrixTestClient, roomId: string, prefix: string) =>
  client.messages(roomId, (e) => String(e.content.body).startsWith(prefix)).map((e) => String(e.content.body));

describe("connection pool", { timeout: 300_000 }, () => {
  let stack: Stack;
  let users: MatrixTestClient[];
  let roomId: string;
  let bob: IrcTestClient;
  const puppetNicks = Array.from({ length: USERS }, (_, i) => `pooluser${i}[m]`);

  before(async () => {
    stack = await Stack.start({ proxy: true });
    stack.networkOverrides = { pool: { connectsPerSecond: RATE, maxConnectsInFlight: 10, offlineQueue: { maxMessages: 20, ttlMs: 120_000 } } };
    users = await Promise.all(Array.from({ length: USERS }, (_, i) => stack.matrixUser(`pooluser${i}`)));
    roomId = await users[0].createRoom({ name: "Pool" });
    stack.mappings = { "#pool": { roomIds: [roomId] } };
    await stack.startBridge();
    bob = await stack.ircUser("bob", ["#pool"]);
  });

  after(async () => {
    await stack?.stop();
  });

  test("20 Matrix users in one room get 20 connections with distinct nicks; IRC lines arrive once", async () => {
    // The room's creator was there before the bridge: their first message opens their connection.
    await users[0].sendText(roomId, "hello from the creator");
    await Promise.all(users.slice(1).map((u) => u.joinRoom(roomId)));
    const names = await waitFor(
      "all 20 puppets in #pool",
      async () => {
        const present = await bob.names("#pool");
        return puppetNicks.every((n) => present.includes(n)) && present;
      },
      60_000,
      500,
    );
    assert.equal(new Set(names.filter((n) => n.endsWith("[m]"))).size, USERS);
    const idents = bob.raw.filter((l) => / JOIN /.test(l) && l.includes("[m]!")).map((l) => /!([^@]+)@/.exec(l)?.[1]);
    assert.equal(new Set(idents).size, USERS, "each puppet has its own ident");

    for (let i = 0; i < 5; i++) bob.say("#pool", `once ${i}`);
    bob.say("#pool", "once marker");
    await users[3].waitForMessage(roomId, (e) => e.content.body === "once marker");
    assert.deepEqual(bodies(users[3], roomId, "once "), ["once 0", "once 1", "once 2", "once 3", "once 4", "once marker"]);
  });

  test("killing the bot's connection loses and doubles nothing", async () => {
    const oper = await stack.ircUser("operator", ["#pool"]);
    for (let i = 0; i < 10; i++) bob.say("#pool", `kill-before ${i}`);
    await operKill(oper, "BridgeBot");
    for (let i = 0; i < 10; i++) bob.say("#pool", `kill-after ${i}`);
    await users[0].waitForMessage(roomId, (e) => e.content.body === "kill-after 9");
    assert.deepEqual(bodies(users[0], roomId, "kill-"), [
      ...Array.from({ length: 10 }, (_, i) => `kill-before ${i}`),
      ...Array.from({ length: 10 }, (_, i) => `kill-after ${i}`),
    ]);
    await waitFor("the bot back in #pool", async () => (await bob.names("#pool")).includes("BridgeBot"), 30_000, 500);
  });

  test("after an IRCd restart every puppet is back, connects stay under the rate, and a message sent meanwhile arrives", async () => {
    const proxy = stack.proxy!;
    const outageStart = Date.now();
    proxy.hold();
    await stack.ircd.stop();
    await users[0].sendText(roomId, "sent during the outage");
    await stack.ircd.start();
    bob = await stack.ircUser("bob2", ["#pool"]);
    proxy.release();

    await bob.waitForLine((l) => l.text === "sent during the outage" && l.nick === puppetNicks[0], "the message sent during the outage", 90_000);
    await waitFor(
      "every puppet and the bot back in #pool",
      async () => {
        const present = await bob.names("#pool");
        return [...puppetNicks, "BridgeBot"].every((n) => present.includes(n));
      },
      90_000,
      500,
    );
    const perSecond = proxy.maxPerSecond(outageStart);
    assert.ok(perSecond <= RATE, `at most ${RATE} connection attempts in any second; saw ${perSecond}`);
    bob.say("#pool", "after restart");
    await users[5].waitForMessage(roomId, (e) => e.content.body === "after restart");
    assert.equal(bodies(users[5], roomId, "after restart").length, 1);
  });

  test("after a bridge restart, recently active users come back by themselves, at the configured rate", async () => {
    const proxy = stack.proxy!;
    await stack.bridge.stop();
    await waitFor("the puppets to leave", async () => !(await bob.names("#pool")).some((n) => n.endsWith("[m]")), 20_000, 300);
    const restartedAt = Date.now();
    await stack.startBridge();
    await waitFor(
      "every puppet back without any Matrix activity",
      async () => {
        const present = await bob.names("#pool");
        return puppetNicks.every((n) => present.includes(n));
      },
      60_000,
      500,
    );
    const perSecond = proxy.maxPerSecond(restartedAt);
    assert.ok(perSecond <= RATE, `at most ${RATE} connection attempts in any second; saw ${perSecond}`);
  });

  test("a nick already in use gives a fallback nick, and the user is told", async () => {
    const squatter = await stack.ircUser("latecomer[m]");
    const late = await stack.matrixUser("latecomer");
    await late.joinRoom(roomId);
    const notice = await late.waitForMessage(roomId, (e) => e.content.msgtype === "m.notice" && String(e.content.body).includes("latecomer[m]_"), 30_000);
    assert.match(String(notice.content.body), /Your nick on TestNet is latecomer\[m\]_, because latecomer\[m\] is already in use/);
    await late.sendText(roomId, "from the fallback nick");
    const line = await bob.waitForLine((l) => l.text === "from the fallback nick");
    assert.equal(line.nick, "latecomer[m]_");
    await squatter.quit();
  });
});

describe("exactly once without msgids: nomination and hand-over", { timeout: 240_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let roomId: string;

  before(async () => {
    stack = await Stack.start({ ircdWithoutModules: ["ircv3_msgid"], proxy: true });
    const users = await Promise.all(["nomid0", "nomid1", "nomid2"].map((n) => stack.matrixUser(n)));
    alice = users[0];
    roomId = await alice.createRoom({ name: "No msgid" });
    stack.mappings = { "#nomsgid": { roomIds: [roomId] } };
    await stack.startBridge();
    await alice.sendText(roomId, "hello");
    await Promise.all(users.slice(1).map((u) => u.joinRoom(roomId)));
  });

  after(async () => {
    await stack?.stop();
  });

  test("when the delivering connection dies silently, another takes over and replays what it missed", async () => {
    const bob = await stack.ircUser("bob", ["#nomsgid"]);
    await waitFor(
      "three puppets in #nomsgid",
      async () => (await bob.names("#nomsgid")).filter((n) => n.endsWith("[m]")).length === 3,
      30_000,
      300,
    );
    const say = (from: number, to: number) => {
      for (let i = from; i < to; i++) bob.say("#nomsgid", `handover ${i}`);
    };
    say(0, 10);
    await alice.waitForMessage(roomId, (e) => e.content.body === "handover 9");
    // The bot connected first, so it holds the proxy's first connection: its link goes dead,
    // lines keep reaching the puppets only, then the bot's socket is cut.
    const botLink = stack.proxy!.connections[0];
    const before = await deduplicated(stack);
    botLink.freeze();
    say(10, 30);
    // Each of the three puppets sees the 20 lines the dead bot does not deliver.
    await waitFor("the puppets to see the lines", async () => (await deduplicated(stack)) >= before + 60, 20_000, 100);
    botLink.cut();
    say(30, 40);
    await alice.waitForMessage(roomId, (e) => e.content.body === "handover 39", 30_000);
    assert.deepEqual(
      bodies(alice, roomId, "handover "),
      Array.from({ length: 40 }, (_, i) => `handover ${i}`),
    );
  });
});

describe("limits: maxClients and idle disconnect", { timeout: 240_000 }, () => {
  let stack: Stack;
  let users: MatrixTestClient[];
  let roomId: string;
  let bob: IrcTestClient;

  before(async () => {
    stack = await Stack.start();
    stack.networkOverrides = { pool: { maxClients: 2, idleTimeoutMs: 8_000 } };
    users = await Promise.all(["lim0", "lim1", "lim2"].map((n) => stack.matrixUser(n)));
    roomId = await users[0].createRoom({ name: "Limits" });
    stack.mappings = { "#limits": { roomIds: [roomId] } };
    await stack.startBridge();
    bob = await stack.ircUser("bob", ["#limits"]);
  });

  after(async () => {
    await stack?.stop();
  });

  test("the least recently active user makes room for a new one, and is told", async () => {
    await users[0].sendText(roomId, "lim0 speaks");
    await bob.waitForLine((l) => l.text === "lim0 speaks");
    await users[1].joinRoom(roomId);
    await users[1].sendText(roomId, "lim1 speaks");
    await bob.waitForLine((l) => l.text === "lim1 speaks");
    await users[2].joinRoom(roomId);
    await users[2].sendText(roomId, "lim2 speaks");
    await bob.waitForLine((l) => l.text === "lim2 speaks");
    await bob.waitForRaw("lim0's puppet quitting", (l) => /:lim0\[m\]!\S+ QUIT /.test(l));
    const notice = await users[0].waitForMessage(roomId, (e) => e.content.msgtype === "m.notice" && String(e.content.body).includes("limit of 2 connections"));
    assert.match(String(notice.content.body), /^@lim0:localhost: You were disconnected from TestNet/);
    assert.deepEqual((await bob.names("#limits")).filter((n) => n.endsWith("[m]")).sort(), ["lim1[m]", "lim2[m]"]);
  });

  test("idle users are disconnected and come back when they next speak", async () => {
    await bob.waitForRaw("lim2's puppet quitting for idleness", (l) => /:lim2\[m\]!\S+ QUIT :?(Quit: )?Idle/.test(l), 30_000);
    await users[2].sendText(roomId, "back from idle");
    const line = await bob.waitForLine((l) => l.text === "back from idle", "the message that brings lim2 back", 30_000);
    assert.equal(line.nick, "lim2[m]");
  });
});
