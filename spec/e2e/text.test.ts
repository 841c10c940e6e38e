/**
 * Text fidelity end to end (issue 14), against a real Synapse and a real InspIRCd: formatting
 * both ways, pills, long messages, replies, edits, bridge commands and a non-UTF-8 line, as an
 * IRC user (bob) and Matrix users (alice, dave) see them.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, test } from "node:test";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient } from "../harness/matrixClient.js";
import { Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";

const HTML = "org.matrix.custom.html";

describe("text fidelity", { timeout: 240_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let dave: MatrixTestClient;
  let bob: IrcTestClient;
  let roomId: string;
  const puppet = "alice[m]";
  const fromAlice = (text: string) => (l: { nick: string; text: string }) => l.nick === puppet && l.text === text;

  /** The msgid the bridge linked to a Matrix event (from its message links, once written). */
  const msgidOfEvent = (eventId: string) =>
    waitFor(`the msgid of ${eventId}`, async () => (await stack.storedMessageLinks()).find((l) => l.eventId === eventId)?.msgid);

  before(async () => {
    stack = await Stack.start();
    [alice, dave] = await Promise.all([stack.matrixUser("alice"), stack.matrixUser("dave")]);
    roomId = await alice.createRoom({ name: "Text", preset: "public_chat" });
    // The room lowers the network's line limit (3) to 2 with its own state event.
    await alice.setState(roomId, "org.matrix.irc.line_limit", { lineLimit: 2 });
    stack.mappings = { "#test": { roomIds: [roomId] } };
    stack.networkOverrides = { encodingFallback: "latin1", lineLimit: 3 };
    await stack.startBridge();
    bob = await stack.ircUser("bob", ["#test"]);
    await dave.joinRoom(roomId);
    await alice.sendText(roomId, "warming up");
    await bob.waitForLine(fromAlice("warming up"), "alice's first line");
  });

  after(async () => {
    await stack?.stop();
  });

  test("bold and colour from IRC arrive as HTML, and the plain body has no codes", async () => {
    bob.say("#test", "\x02bold\x02 and \x0304red\x03 <b>not html</b>");
    const event = await alice.waitForMessage(roomId, (e) => String(e.content.body).startsWith("bold and red"));
    assert.equal(event.content.body, "bold and red <b>not html</b>");
    assert.equal(event.content.format, HTML);
    assert.equal(event.content.formatted_body, '<strong>bold</strong> and <font data-mx-color="#ff0000">red</font> &lt;b&gt;not html&lt;/b&gt;');
  });

  test("notices and private messages use the same builder: formatting as HTML", async () => {
    bob.client.notice("#test", "\x1dnote\x1d to all");
    const notice = await alice.waitForMessage(roomId, (e) => e.content.body === "note to all");
    assert.equal(notice.content.msgtype, "m.notice");
    assert.equal(notice.content.formatted_body, "<em>note</em> to all");

    bob.say(puppet, "\x02psst\x02 alice[m]");
    const pmRoom = await alice.waitForInvite("bob's PM room", (state) => state.some((e) => e.type === "m.room.member" && e.sender === stack.ghostId("bob")));
    await alice.joinRoom(pmRoom);
    const pm = await alice.waitForMessage(pmRoom, (e) => e.content.body === "psst alice[m]");
    assert.equal(pm.content.format, HTML);
    assert.match(String(pm.content.formatted_body), /^<strong>psst<\/strong> <a href="https:\/\/matrix.to\/#\/%40alice%3Alocalhost">alice\[m\]<\/a>$/);
    assert.deepEqual(pm.content["m.mentions"], { user_ids: [alice.userId] });
    await alice.send(pmRoom, { msgtype: "m.text", body: "hi", format: HTML, formatted_body: "<em>hi</em> back" });
    await bob.waitForLine((l) => l.nick === puppet && l.target === "bob" && l.text === "\x1dhi\x1d back", "alice's formatted PM");
  });

  test("Element-style HTML with a link and a list arrives as the expected IRC lines", async () => {
    await alice.send(roomId, {
      msgtype: "m.text",
      body: "See the docs\n\n- one\n- two",
      format: HTML,
      formatted_body: '<p>See <a href="https://example.org/docs">the docs</a></p>\n<ul>\n<li>one</li>\n<li><strong>two</strong></li>\n</ul>\n',
    });
    await bob.waitForLine(fromAlice("- \x02two"), "the list's last line");
    const mine = bob.lines.filter((l) => l.nick === puppet).map((l) => l.text);
    const at = mine.indexOf("See the docs (https://example.org/docs)");
    assert.ok(at >= 0, `the link line, in ${JSON.stringify(mine)}`);
    assert.deepEqual(mine.slice(at, at + 3), ["See the docs (https://example.org/docs)", "- one", "- \x02two"]);
  });

  test("a pill of a Matrix user arrives as that user's puppet nick, not the display name", async () => {
    await waitFor("dave's puppet in #test", async () => ((await bob.names("#test")).includes("dave[m]") ? true : undefined), 60_000);
    await alice.send(roomId, {
      msgtype: "m.text",
      body: "Dave Smith: look",
      format: HTML,
      formatted_body: `<a href="https://matrix.to/#/${encodeURIComponent(dave.userId)}">Dave Smith</a>: look`,
    });
    await bob.waitForLine(fromAlice("dave[m]: look"), "the pill as a nick");
  });

  test("a 600-byte message arrives in several lines whose texts join to the original", async () => {
    const words = Array.from({ length: 100 }, (_, i) => `w${String(i).padStart(3, "0")}é`);
    const text = words.join(" ");
    assert.ok(Buffer.byteLength(text) >= 600);
    await alice.sendText(roomId, text);
    await waitFor("the whole long message on IRC", () => (bob.lines.some((l) => l.nick === puppet && l.text.endsWith("w099é")) ? true : undefined));
    const start = bob.lines.findIndex((l) => l.nick === puppet && l.text.startsWith("w000é"));
    const end = bob.lines.findIndex((l) => l.nick === puppet && l.text.endsWith("w099é"));
    const pieces = bob.lines.slice(start, end + 1).filter((l) => l.nick === puppet).map((l) => l.text);
    assert.ok(pieces.length >= 2, `several lines: ${pieces.length}`);
    // Cut on the real budget (the host the server showed in the puppet's JOIN), not the
    // 63-byte assumed host, which would leave about 410 bytes.
    assert.ok(Buffer.byteLength(pieces[0]) > 430, `first line ${Buffer.byteLength(pieces[0])} bytes`);
    assert.equal(pieces.join(" "), text);

    // Bold across the cut: every line is bold on IRC (the formatting reopened on each).
    await alice.send(roomId, { msgtype: "m.text", body: text, format: HTML, formatted_body: `<strong>${text.replace(/w/g, "v")}</strong>` });
    await waitFor("the bold long message on IRC", () => (bob.lines.some((l) => l.nick === puppet && l.text.endsWith("v099é")) ? true : undefined));
    const bold = bob.lines.filter((l) => l.nick === puppet && /v\d{3}é/.test(l.text)).map((l) => l.text);
    assert.ok(bold.length >= 2);
    for (const line of bold) assert.ok(line.startsWith("\x02"), JSON.stringify(line.slice(0, 10)));
    assert.equal(bold.map((l) => l.replace(/\x02/g, "")).join(" "), text.replace(/w/g, "v"));
  });

  test("a 20-line message is split (the fallback while there are no media links) and the sender is told, with the room's own limit", async () => {
    const lines = Array.from({ length: 20 }, (_, i) => `row ${i + 1}`);
    await alice.sendText(roomId, lines.join("\n"));
    await bob.waitForLine(fromAlice("row 20"), "the last row");
    const notice = await alice.waitForMessage(roomId, (e) => e.content.msgtype === "m.notice" && /20 lines/.test(String(e.content.body)));
    assert.match(String(notice.content.body), /limit of 2/);
  });

  test("a Matrix reply carries +reply with the replied-to line's msgid, and the nick prefix", async () => {
    bob.say("#test", "who wants tea?");
    const question = await alice.waitForMessage(roomId, (e) => e.content.body === "who wants tea?");
    const msgid = await msgidOfEvent(question.event_id);
    await alice.send(roomId, {
      msgtype: "m.text",
      body: `> <${question.sender}> who wants tea?\n\nme please`,
      "m.relates_to": { "m.in_reply_to": { event_id: question.event_id } },
    });
    await bob.waitForLine(fromAlice("bob: me please"), "the reply, addressed to bob");
    const raw = await bob.waitForRaw("the reply's raw line", (l) => l.endsWith(":bob: me please"));
    assert.match(raw, new RegExp(`[@;]\\+reply=${msgid.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}[; ]`));
    assert.match(raw, /[@;]\+draft\/reply=/);
  });

  test("an IRC line with +draft/reply arrives as a Matrix reply", async () => {
    const eventId = await alice.sendText(roomId, "anyone here?");
    await bob.waitForLine(fromAlice("anyone here?"));
    const msgid = await msgidOfEvent(eventId);
    bob.client.raw(`@+draft/reply=${msgid} PRIVMSG #test :yes, me`);
    const reply = await alice.waitForMessage(roomId, (e) => e.content.body === "yes, me");
    assert.deepEqual(reply.content["m.relates_to"], { "m.in_reply_to": { event_id: eventId } });
  });

  test("an appending edit sends only the new words", async () => {
    const eventId = await alice.sendText(roomId, "the meeting is at");
    await bob.waitForLine(fromAlice("the meeting is at"));
    await alice.send(roomId, {
      msgtype: "m.text",
      body: "* the meeting is at noon tomorrow",
      "m.new_content": { msgtype: "m.text", body: "the meeting is at noon tomorrow" },
      "m.relates_to": { rel_type: "m.replace", event_id: eventId },
    });
    await bob.waitForLine(fromAlice("noon tomorrow"), "only the appended words");
    assert.ok(!bob.lines.some((l) => l.text.includes("* the meeting")), "not the whole text again");
  });

  test("!irc commands typed in a bridged room never reach IRC", async () => {
    await alice.sendText(roomId, "!irc help");
    await alice.sendText(roomId, "after the command");
    await bob.waitForLine(fromAlice("after the command"));
    assert.ok(!bob.lines.some((l) => l.text.includes("!irc help")));
  });

  test("a latin1 line (not valid UTF-8) arrives readable", async () => {
    const socket = connect(stack.ircd.port, "127.0.0.1");
    let seen = "";
    socket.on("data", (d: Buffer) => (seen += d.toString("latin1")));
    try {
      socket.write("NICK carol\r\nUSER carol 0 * :latin1 user\r\n");
      await waitFor("carol to be welcomed", () => (/ 001 carol /.test(seen) ? true : undefined));
      socket.write("JOIN #test\r\n");
      await waitFor("carol in #test", () => (/ 366 carol #test /.test(seen) ? true : undefined));
      socket.write(Buffer.from("PRIVMSG #test :caf\xe9 cr\xe8me br\xfbl\xe9e\r\n", "latin1"));
      const event = await alice.waitForMessage(roomId, (e) => e.sender === stack.ghostId("carol"));
      assert.equal(event.content.body, "café crème brûlée");
    } finally {
      socket.destroy();
    }
  });
});
