/**
 * The admin room, used as a person would: a DM with the bridge bot, `!` commands, answers,
 * and notices about the user's connection. Also who may use the bridge at all.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { IRC_OPER } from "../harness/inspircd.js";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient, TimelineEvent } from "../harness/matrixClient.js";
import { Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";

describe("admin room", { timeout: 240_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let adminRoom: string;
  let roomId: string;
  let watcher: IrcTestClient;
  let elsewhere: string;
  let services: IrcTestClient;

  /** Sends a command; resolves with the bot's first notice after it, and the command's event ID. */
  const command = async (text: string): Promise<TimelineEvent & { command: string }> => {
    const notices = () => alice.messages(adminRoom, (e) => e.sender !== alice.userId && e.content.msgtype === "m.notice");
    const before = notices().length;
    const eventId = await alice.sendText(adminRoom, text);
    const reply = await waitFor(`the answer to ${text}`, () => notices()[before]);
    return Object.assign(reply, { command: eventId });
  };
  const body = (e: TimelineEvent) => String(e.content.body);

  before(async () => {
    stack = await Stack.start();
    stack.networkOverrides = { pool: { dropNoticeAfterMs: 0 } };
    stack.configOverrides = { permissions: { "*": "user", [`@mallory:${stack.synapse.serverName}`]: "none" } };
    alice = await stack.matrixUser("alice");
    roomId = await alice.createRoom({ name: "Admin tests" });
    stack.mappings = { "#admin": { roomIds: [roomId] } };
    await stack.startBridge();
    watcher = await stack.ircUser("watcher", ["#admin"]);
    adminRoom = await alice.createRoom({ preset: "trusted_private_chat", is_direct: true, invite: [`@ircbot:${stack.synapse.serverName}`] });
    await alice.waitForMessage(adminRoom, (e) => /This is your admin room/.test(body(e)));
  });

  after(async () => {
    await stack?.stop();
  });

  test("!help lists the commands; an unknown command gets the help", async () => {
    const help = await command("!help");
    for (const name of ["!nick", "!join", "!part", "!listrooms", "!whois", "!cmd", "!username", "!storepass", "!removepass", "!reconnect", "!quit", "!bridgeversion", "!feature"]) {
      assert.ok(body(help).includes(name), `${name} is listed`);
    }
    const one = await command("!help whois");
    assert.match(body(one), /^!whois \[network\]/);
    const unknown = await command("!frobnicate");
    assert.match(body(unknown), /Unknown command !frobnicate/);
    assert.match(body(unknown), /!nick/);
  });

  test("!storepass without a key file configured is refused", async () => {
    const reply = await command("!storepass hunter2");
    assert.match(body(reply), /cannot store passwords.*credentials\.keyFile/);
  });

  test("!nick changes the nick now; messages then come from it", async () => {
    await alice.sendText(roomId, "first words");
    await watcher.waitForLine((l) => l.text === "first words" && l.nick === "alice[m]");
    const reply = await command("!nick alicia");
    assert.match(body(reply), /now alicia/);
    await watcher.waitForRaw("the nick change", (l) => /:alice\[m\]!\S+ NICK :?alicia/.test(l));
    await alice.sendText(roomId, "as alicia");
    const line = await watcher.waitForLine((l) => l.text === "as alicia");
    assert.equal(line.nick, "alicia");
    assert.match(body(await command("!nick")), /Your nick on TestNet is alicia/);
    assert.match(body(await command("!nick 9lives")), /not a valid IRC nick/);
    const taken = await command("!nick watcher");
    assert.match(body(taken), /TestNet refused the nick watcher: .*in use/i);
    assert.match(body(await command("!nick")), /Your nick on TestNet is alicia/);
  });

  test("!whois of an IRC user and of a Matrix user", async () => {
    const irc = await command("!whois watcher");
    assert.match(body(irc), /watcher \(watcher!watcher@\S+\) on TestNet/);
    assert.match(body(irc), /Channels: .*#admin/);
    const matrix = await command(`!whois ${alice.userId}`);
    assert.match(body(matrix), /is alicia on TestNet/);
    assert.match(body(await command("!whois nobodyhere")), /nobodyhere is not on TestNet/);
  });

  test("!cmd AWAY takes effect and the server's answer comes back; unsafe commands are refused", async () => {
    const reply = await command("!cmd AWAY :brb");
    assert.match(body(reply), / 306 alicia :You/);
    watcher.client.raw("WHOIS", "alicia");
    await watcher.waitForRaw("alicia's away message", (l) => / 301 watcher alicia :brb/.test(l));

    assert.match(body(await command("!cmd QUIT :bye")), /QUIT would break/);
    assert.match(body(await command("!cmd PRIVMSG #admin :sneaky")), /#admin is bridged/);
    assert.match(body(await command("!cmd AWAY :a\nQUIT :b")), /one line/);
    assert.match(body(await command("!cmd 12AB")), /not an IRC command word/);
  });

  test("a dropped connection is reported in the admin room, and its return", async () => {
    const oper = await stack.ircUser("oper");
    oper.client.raw("OPER", IRC_OPER.name, IRC_OPER.password);
    await oper.waitForRaw("RPL_YOUREOPER", (l) => / 381 /.test(l));
    oper.client.raw("KILL", "alicia", "testing drops");
    const lost = await alice.waitForMessage(adminRoom, (e) => /connection to TestNet was lost/.test(body(e)));
    assert.match(body(lost), /testing drops/);
    await alice.waitForMessage(adminRoom, (e) => /Reconnected to TestNet as alicia/.test(body(e)), 30_000);
  });

  test("!listrooms, !join and !part", async () => {
    const list = await command("!listrooms");
    assert.ok(body(list).includes(`#admin: ${roomId}`), body(list));
    const joined = await command("!join #elsewhere");
    assert.match(body(joined), /Invited you to the room of #elsewhere/);
    elsewhere = await alice.waitForInvite("#elsewhere's room", (s) => s.some((e) => e.type === "m.room.name" && e.content.name === "#elsewhere"));
    await watcher.join("#elsewhere");
    await alice.joinRoom(elsewhere);
    await watcher.waitForRaw("alicia joining #elsewhere", (l) => /:alicia!\S+ JOIN :?#elsewhere/.test(l));
    const parted = await command("!part #admin");
    assert.match(body(parted), /You left #admin/);
    await watcher.waitForRaw("alicia parting", (l) => /:alicia!\S+ PART #admin/.test(l));
  });

  test("!feature switches, !bridgeversion, and mentions of a nick become pills", async () => {
    await alice.sendText(roomId, "back again"); // rejoins #admin
    await watcher.waitForLine((l) => l.text === "back again");
    watcher.say("#admin", "alicia: ping");
    const mention = await alice.waitForMessage(roomId, (e) => e.content.body === "alicia: ping");
    assert.deepEqual(mention.content["m.mentions"], { user_ids: [alice.userId] });
    assert.match(String(mention.content.formatted_body), /<a href="https:\/\/matrix\.to\/#\/%40alice%3A[^"]+">alicia<\/a>: ping/);

    assert.match(body(await command("!feature mentions off")), /mentions is now off/);
    watcher.say("#admin", "alicia: ping again");
    const plain = await alice.waitForMessage(roomId, (e) => e.content.body === "alicia: ping again");
    assert.equal(plain.content["m.mentions"], undefined);
    assert.match(body(await command("!bridgeversion")), /^matrix-irc-bridge \d+\.\d+\.\d+/);
  });

  test("the nick survives a restart; with a key file !storepass stores the password encrypted and uses it", async () => {
    const keyFile = join(stack.dir, "passkey.bin");
    writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
    stack.configOverrides = { ...stack.configOverrides, credentials: { keyFile } };
    await stack.bridge.stop();
    await stack.startBridge();
    await watcher.waitForRaw("alicia back after the restart", (l) => /:alicia!\S+ JOIN :?#admin/.test(l) && watcher.raw.indexOf(l) > watcher.raw.findIndex((x) => /:alicia!\S+ PART #admin/.test(x)));

    services = await stack.ircUser("NickServ");
    const stored = await command("!storepass hunter2 with spaces");
    assert.match(body(stored), /stored, encrypted/);
    const redacted = await alice.request<{ content: Record<string, unknown> }>(
      "GET",
      `/_matrix/client/v3/rooms/${encodeURIComponent(adminRoom)}/event/${encodeURIComponent(stored.command)}`,
    );
    assert.deepEqual(redacted.content, {}, "the message with the password is redacted");
    assert.ok(!stack.storeBytesOnDisk().includes("hunter2"), "the password is nowhere in the store in clear");

    assert.match(body(await command("!username alicia")), /log in to TestNet as alicia/);
    assert.match(body(await command("!reconnect")), /Reconnected to TestNet as alicia/);
    const identify = await services.waitForLine((l) => l.nick === "alicia" && l.target === "NickServ");
    assert.equal(identify.text, "IDENTIFY alicia hunter2 with spaces");
    assert.match(body(await command("!removepass")), /forgotten/);
  });

  test("an edited !storepass and a !join key are redacted, never on disk in clear, and the edit stores the new password; a password over a link without TLS is warned of", async () => {
    const dataFiles = () => stack.storeBytesOnDisk();
    const eventOf = (eventId: string) =>
      alice.request<{ content: Record<string, unknown> }>("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(adminRoom)}/event/${encodeURIComponent(eventId)}`);
    const first = await command("!storepass typo-Pa55word");
    assert.match(body(first), /stored, encrypted/);

    // Element's edit: a fallback body with "* ", the new text in m.new_content.
    const notices = () => alice.messages(adminRoom, (e) => e.sender !== alice.userId && e.content.msgtype === "m.notice");
    const before = notices().length;
    const edit = await alice.send(adminRoom, {
      msgtype: "m.text",
      body: "* !storepass edited-Pa55word",
      "m.new_content": { msgtype: "m.text", body: "!storepass edited-Pa55word" },
      "m.relates_to": { rel_type: "m.replace", event_id: first.command },
    });
    const reply = await waitFor("the answer to the edit", () => notices()[before]);
    assert.ok(!dataFiles().includes("edited-Pa55word"), "the edited password is not in the journal (or any file) in clear");
    assert.match(body(reply), /stored, encrypted/, "the edit is a new !storepass");
    assert.match(body(reply), /without TLS/, "the reply warns that the password goes over plain text");
    await waitFor("the edit redacted", async () => Object.keys((await eventOf(edit)).content).length === 0);
    assert.deepEqual((await eventOf(first.command)).content, {}, "the original is redacted too");

    const keyed = await command("!join #keyed-chan s3cretKey-XYZ");
    assert.match(body(keyed), /Invited you to the room of #keyed-chan/);
    await waitFor("the !join with a key redacted", async () => Object.keys((await eventOf(keyed.command)).content).length === 0);

    assert.match(body(await command("!reconnect")), /Reconnected to TestNet as alicia/);
    await services.waitForLine((l) => l.nick === "alicia" && l.text === "IDENTIFY alicia edited-Pa55word");
    await waitFor("a warning that credentials went over plain text", () => /password .*without TLS/i.test(stack.bridge.output));

    const files = dataFiles();
    for (const secret of ["typo-Pa55word", "edited-Pa55word", "s3cretKey-XYZ"]) {
      assert.ok(!files.includes(secret), `${secret} is nowhere in the data directory in clear`);
      assert.ok(!stack.bridge.output.includes(secret), `${secret} is not in the bridge's log`);
    }
    assert.match(body(await command("!removepass")), /forgotten/);
  });

  test("!quit disconnects and takes the user out of the network's rooms", async () => {
    const reply = await command("!quit");
    assert.match(body(reply), /disconnected from TestNet and out of the rooms of .*#elsewhere/);
    assert.match(body(reply), new RegExp(`may not remove you from ${roomId.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`), "the room alice owns is named");
    await watcher.waitForRaw("alicia quitting", (l) => /:alicia!\S+ QUIT/.test(l));
    const removed = await alice.waitForEvent(elsewhere, (e) => e.type === "m.room.member" && e.state_key === alice.userId && e.content.membership === "leave", "alice taken out of #elsewhere's room");
    assert.match(String(removed.content.reason), /You quit TestNet with !quit/);
  });

  test("someone the config does not allow is told, and nothing of theirs reaches IRC", async () => {
    const mallory = await stack.matrixUser("mallory");
    await mallory.joinRoom(roomId);
    await mallory.sendText(roomId, "let me in");
    const notice = await mallory.waitForMessage(roomId, (e) => e.content.msgtype === "m.notice" && String(e.content.body).startsWith(mallory.userId));
    assert.match(body(notice), /not allowed to use this bridge/);
    assert.equal(watcher.lines.filter((l) => l.text === "let me in").length, 0);
  });
});
