/**
 * No text from Matrix can start an IRC line: CR, LF and NUL sent through every Matrix field
 * that reaches IRC (kick, ban and leave reasons, the kicker's KICK reason, topics, `!whois`,
 * `!join` keys, `!nick`, a display name used by a `$DISPLAY` nick template). A "NickServ" IRC
 * client records every PRIVMSG it gets, a watcher in the channel sees every raw line, and no
 * injected command may show up anywhere; the bot and the puppets stay connected.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient, TimelineEvent } from "../harness/matrixClient.js";
import { Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";

/** What an attacker puts in a field: each break would start a command of its own. */
const payload = (tag: string) => `x\r\nPRIVMSG NickServ :pwned-${tag}\nJOIN #evil\r\0QUIT :gone-${tag}`;

describe("no injection from Matrix into IRC", { timeout: 300_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let roomId: string;
  let lockedRoom: string;
  let adminRoom: string;
  let chief: IrcTestClient;
  let nickserv: IrcTestClient;
  const member = (userId: string, membership: string) => (e: TimelineEvent) =>
    e.type === "m.room.member" && e.state_key === userId && e.content.membership === membership;
  const body = (e: TimelineEvent) => String(e.content.body);

  /** Sends an admin command; resolves with the bot's answer. */
  const command = async (text: string): Promise<string> => {
    const notices = () => alice.messages(adminRoom, (e) => e.sender !== alice.userId && e.content.msgtype === "m.notice");
    const before = notices().length;
    await alice.sendText(adminRoom, text);
    return body(await waitFor(`the answer to ${JSON.stringify(text)}`, () => notices()[before]));
  };

  /** A Matrix user in the room whose puppet is in #inj. */
  const puppetInChannel = async (name: string, nick = `${name}[m]`) => {
    const user = await stack.matrixUser(name);
    await alice.request("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/invite`, { user_id: user.userId });
    await user.joinRoom(roomId);
    await user.sendText(roomId, `hello from ${name}`);
    await chief.waitForLine((l) => l.text === `hello from ${name}`, `${name}'s first line`);
    const line = chief.lines.find((l) => l.text === `hello from ${name}`)!;
    assert.equal(line.nick, nick);
    return user;
  };

  before(async () => {
    stack = await Stack.start();
    // Nicks from display names, so a display name is one more field that reaches IRC.
    stack.networkOverrides = { puppetNickTemplate: "$DISPLAY[m]" };
    alice = await stack.matrixUser("alice");
    roomId = await alice.createRoom({ name: "Injection", preset: "public_chat" });
    lockedRoom = await alice.createRoom({ name: "Locked", preset: "public_chat" });
    stack.mappings = { "#inj": { roomIds: [roomId] }, "#locked": { roomIds: [lockedRoom], key: "right" } };
    chief = await stack.ircUser("chief", ["#inj", "#locked"]); // first in: channel operator
    chief.client.raw("MODE", "#locked", "+k", "right");
    await chief.waitForRaw("#locked keyed", (l) => /MODE #locked \+k :?right/.test(l));
    nickserv = await stack.ircUser("NickServ");
    await stack.startBridge();
    await alice.sendText(roomId, "alice is here");
    await chief.waitForLine((l) => l.text === "alice is here" && l.nick === "alice[m]");
    adminRoom = await alice.createRoom({ preset: "trusted_private_chat", is_direct: true, invite: [`@ircbot:${stack.synapse.serverName}`] });
    await alice.waitForMessage(adminRoom, (e) => /This is your admin room/.test(body(e)));
  });

  after(async () => {
    await stack?.stop();
  });

  test("a kick reason and a ban reason reach IRC as the victim's PART reason, on one line", async () => {
    const bob = await puppetInChannel("bob");
    await alice.request("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/kick`, { user_id: bob.userId, reason: payload("kick") });
    const part = await chief.waitForRaw("bob[m] parting", (l) => /:bob\[m\]!\S+ PART #inj/.test(l));
    assert.match(part, /Kicked in Matrix by @alice:\S+: x PRIVMSG NickServ :pwned-kick JOIN #evil QUIT :gone-kick/);

    const carol = await puppetInChannel("carol");
    await alice.request("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/ban`, { user_id: carol.userId, reason: payload("ban") });
    const banPart = await chief.waitForRaw("carol[m] parting", (l) => /:carol\[m\]!\S+ PART #inj/.test(l));
    assert.match(banPart, /Banned in Matrix by @alice:\S+: x PRIVMSG NickServ :pwned-ban/);

    const dave = await puppetInChannel("dave");
    await dave.request("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/leave`, { reason: payload("leave") });
    await chief.waitForRaw("dave[m] parting", (l) => /:dave\[m\]!\S+ PART #inj/.test(l));
  });

  test("the kicker's KICK reason and a topic stay one line", async () => {
    chief.client.raw("MODE", "#inj", "+o", "alice[m]");
    await chief.waitForRaw("alice[m] made operator", (l) => /MODE #inj \+o :?alice\[m\]/.test(l));
    const troll = await stack.ircUser("troll", ["#inj"]);
    await alice.waitForEvent(roomId, member(stack.ghostId("troll"), "join"), "troll's ghost joining");
    await alice.request("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/kick`, { user_id: stack.ghostId("troll"), reason: payload("kicker") });
    const kick = await chief.waitForRaw("the kick of troll", (l) => /:alice\[m\]!\S+ KICK #inj troll :/.test(l));
    assert.match(kick, /KICK #inj troll :x PRIVMSG NickServ :pwned-kicker JOIN #evil QUIT :gone-kicker$/);

    await alice.setState(roomId, "m.room.topic", { topic: payload("topic") });
    const topic = await chief.waitForRaw("the topic", (l) => /:alice\[m\]!\S+ TOPIC #inj :/.test(l));
    assert.match(topic, /TOPIC #inj :x PRIVMSG NickServ :pwned-topic JOIN #evil/);
  });

  test("admin commands refuse line breaks in nicks, WHOIS targets and channel keys, with a reason", async () => {
    assert.match(await command("!whois a\r\nQUIT :gone-whois"), /not a valid IRC nick/);
    assert.match(await command("!join #new x\r\nQUIT :gone-join"), /not a valid channel key/);
    assert.match(await command("!join #new2 x\0PRIVMSG"), /not a valid channel key/);
    assert.match(await command("!nick al\r\nQUIT"), /not a valid IRC nick/);
    assert.match(await command("!cmd AWAY :a\r\nQUIT :gone-cmd"), /one line/);
    // The bot is still there and answers.
    assert.match(await command("!whois chief"), /chief \(chief!/);
  });

  test("a display name with line breaks makes a clean nick", async () => {
    const eve = await stack.matrixUser("eve");
    await eve.request("PUT", `/_matrix/client/v3/profile/${encodeURIComponent(eve.userId)}/displayname`, { displayname: "Eve\r\nQUIT :gone-display" });
    await alice.request("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/invite`, { user_id: eve.userId });
    await eve.joinRoom(roomId);
    await eve.sendText(roomId, "hello from eve");
    const line = await chief.waitForLine((l) => l.text === "hello from eve", "eve's line");
    assert.match(line.nick, /^EveQUITgone-display\[m\]$|^EveQUITgone-di/);
  });

  test("a key given with !join never replaces a bridged channel's key unless IRC accepts it", async () => {
    assert.match(await command("!join #locked wrong"), /cannot join #locked/i);
    // Someone else joining the room later still gets in with the key the bridge had.
    const frank = await stack.matrixUser("frank");
    await frank.joinRoom(lockedRoom);
    await frank.sendText(lockedRoom, "frank got in");
    await chief.waitForLine((l) => l.text === "frank got in" && l.target === "#locked", "frank's line in #locked");
  });

  test("nothing was injected, and everyone is still connected", async () => {
    const names = await chief.names("#inj");
    for (const nick of ["BridgeBot", "alice[m]"]) assert.ok(names.includes(nick), `${nick} is still in #inj (${names.join(" ")})`);
    assert.deepEqual(await nickserv.names("#evil").catch(() => []), []);
    assert.deepEqual(nickserv.lines.filter((l) => /pwned/.test(l.text)), [], "NickServ got no injected PRIVMSG");
    // Only the command position counts: the flattened texts above hold these words harmlessly.
    const commands = (command: string) => chief.raw.filter((l) => new RegExp(`^(@\\S+ )?:\\S+ ${command} `).test(l));
    assert.deepEqual(commands("QUIT"), [], "nobody quit");
    assert.deepEqual(commands("JOIN").filter((l) => /#evil/.test(l)), [], "no injected JOIN");
  });
});
