/**
 * Connections never die for good by accident, and IRC's answers end what they answer:
 * an IRCd that is down when the bridge starts, a ban from one channel followed by a dropped
 * link, the bot kicked (and banned), joins refused with numerics the IRC library does not
 * map, and a link that goes dead both ways while a message is on it.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { IRC_OPER } from "../harness/inspircd.js";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient, TimelineEvent } from "../harness/matrixClient.js";
import { Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";

describe("faults", { timeout: 420_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let roomId: string;
  let adminRoom: string;
  let chief: IrcTestClient;
  const body = (e: TimelineEvent) => String(e.content.body);

  /** Sends an admin command; resolves with the bot's answer and how long it took. */
  const command = async (text: string, timeoutMs = 30_000): Promise<{ answer: string; ms: number }> => {
    const notices = () => alice.messages(adminRoom, (e) => e.sender !== alice.userId && e.content.msgtype === "m.notice");
    const before = notices().length;
    const started = Date.now();
    await alice.sendText(adminRoom, text);
    const answer = body(await waitFor(`the answer to ${JSON.stringify(text)}`, () => notices()[before], timeoutMs));
    return { answer, ms: Date.now() - started };
  };

  /** Both directions work: an IRC line reaches the room, a Matrix line reaches IRC. */
  const relayWorks = async (tag: string) => {
    chief.say("#faults", `from irc ${tag}`);
    await alice.waitForMessage(roomId, (e) => body(e) === `from irc ${tag}`, 90_000);
    await alice.sendText(roomId, `from matrix ${tag}`);
    await chief.waitForLine((l) => l.text === `from matrix ${tag}`, `alice's line ${tag}`, 90_000);
  };

  before(async () => {
    stack = await Stack.start({ proxy: true, homeserverProxy: true, extraModules: ["services_account", "operchans"] });
    stack.networkOverrides = { pool: { dropNoticeAfterMs: 0 } };
    alice = await stack.matrixUser("alice");
    roomId = await alice.createRoom({ name: "Faults", preset: "public_chat" });
    stack.mappings = { "#faults": { roomIds: [roomId] } };
  });

  after(async () => {
    await stack?.stop();
  });

  test("a bridge started while the IRCd is down connects once it is up, without a restart", async () => {
    await stack.ircd.stop();
    await stack.startBridge();
    // The bot keeps trying (each try is a connection the proxy accepts and cannot forward).
    await waitFor("the bot to try twice", () => stack.proxy!.acceptedAt.length >= 2, 60_000);
    await stack.ircd.start();
    chief = await stack.ircUser("chief", ["#faults"]);
    await chief.waitForRaw("the bot joining #faults", (l) => /:BridgeBot!\S+ JOIN :?#faults/.test(l), 90_000);
    await relayWorks("after start");
    adminRoom = await alice.createRoom({ preset: "trusted_private_chat", is_direct: true, invite: [`@ircbot:${stack.synapse.serverName}`] });
    await alice.waitForMessage(adminRoom, (e) => /This is your admin room/.test(body(e)));
  });

  test("an old 'banned from a channel' answer does not stop the bot from reconnecting after a drop", async () => {
    await chief.join("#banned");
    chief.client.raw("MODE", "#banned", "+b", "BridgeBot!*@*");
    await chief.waitForRaw("the ban", (l) => /MODE #banned \+b :?BridgeBot!\*@\*/.test(l));
    const { answer } = await command("!join #banned");
    assert.match(answer, /banned from #banned/);
    const start = chief.raw.length;
    for (const connection of stack.proxy!.connections) connection.cut();
    await waitFor("the bot to reconnect and rejoin", () => chief.raw.slice(start).find((l) => /:BridgeBot!\S+ JOIN :?#faults/.test(l)), 60_000);
    await relayWorks("after the drop");
  });

  test("joins refused with numerics the IRC library does not map fail at once, with the reason", async () => {
    await chief.join("#reggedonly");
    chief.client.raw("MODE", "#reggedonly", "+R");
    await chief.join("#opersonly");
    // Only IRC operators may set +O.
    chief.client.raw("OPER", IRC_OPER.name, IRC_OPER.password);
    await chief.waitForRaw("chief opered up", (l) => / 381 /.test(l));
    chief.client.raw("MODE", "#opersonly", "+O");
    await chief.waitForRaw("+O set", (l) => /MODE #opersonly :?\+O/.test(l));
    const regged = await command("!join #reggedonly");
    assert.match(regged.answer, /registered nick/);
    const opers = await command("!join #opersonly");
    assert.match(opers.answer, /IRC operators only/);
    // Answered by the server at once, not by the bridge's 15 s join timeout.
    for (const { ms } of [regged, opers]) assert.ok(ms < 10_000, `answered in ${ms} ms`);
  });

  test("a homeserver that stops answering the bridge never holds a room's messages to IRC", async () => {
    const queued = async () => {
      const metrics = await (await fetch(`http://127.0.0.1:${stack.bridgePort}/metrics`)).text();
      return Number(/^bridge_room_queue_depth (\d+)/m.exec(metrics)?.[1] ?? 0) >= 1 ? true : undefined;
    };
    stack.homeserverProxy!.freezeAll();
    chief.say("#faults", "said while the homeserver is away");
    await waitFor("the IRC line to wait for the homeserver", queued, 30_000);
    await alice.sendText(roomId, "to IRC while the homeserver is away");
    await chief.waitForLine((l) => l.text === "to IRC while the homeserver is away", "alice's line, not held behind the IRC line", 10_000);
    stack.homeserverProxy!.thawAll();
    await alice.waitForMessage(roomId, (e) => body(e) === "said while the homeserver is away", 120_000);
  });

  test("the bot rejoins a channel it is kicked from; banned, it stays out and the users there are told", async () => {
    const start = chief.raw.length;
    chief.client.raw("KICK", "#faults", "BridgeBot", "out you go");
    await waitFor("the bot to rejoin", () => chief.raw.slice(start).find((l) => /:BridgeBot!\S+ JOIN :?#faults/.test(l)), 30_000);
    await relayWorks("after a kick");

    chief.client.raw("MODE", "#faults", "+b", "BridgeBot!*@*");
    await chief.waitForRaw("the ban", (l) => /MODE #faults \+b :?BridgeBot!\*@\*/.test(l));
    chief.client.raw("KICK", "#faults", "BridgeBot", "and stay out");
    const told = await alice.waitForMessage(adminRoom, (e) => /kicked from #faults .* cannot rejoin/.test(body(e)), 60_000);
    assert.match(body(told), /banned/);
    chief.client.raw("MODE", "#faults", "-b", "BridgeBot!*@*");
  });

  test("a message on a link that dies both ways arrives after the reconnect, or its sender is told", async () => {
    const fred = await stack.matrixUser("fred");
    const before = stack.proxy!.connections.length;
    await fred.joinRoom(roomId);
    await fred.sendText(roomId, "fred is here");
    await chief.waitForLine((l) => l.text === "fred is here", "fred's first line", 60_000);
    const fredsLink = stack.proxy!.connections[before];
    assert.ok(fredsLink, "fred's puppet connected through the proxy");
    fredsLink.freezeBothWays();
    await fred.sendText(roomId, "sent into a dead link");
    const arrived = () => chief.lines.some((l) => l.text === "sent into a dead link");
    const told = () => fred.messages(roomId).some((e) => /sent into a dead link|may not have arrived/.test(body(e)) && e.sender !== fred.userId);
    await waitFor("the line to arrive after the reconnect, or fred to be told", () => arrived() || told(), 120_000);
    assert.ok(arrived(), "the line was sent again after the reconnect");
  });
});
