import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Client } from "irc-framework";
import { buildLine, cutToBytes, IrcWriter, parseCommandLine, splitMessage, UnsafeLineError } from "../../src/irc/IrcWriter.js";
import { SendPacer } from "../../src/irc/SendPacer.js";
import type { IrcFailure } from "../../src/irc/errors.js";

const NASTY = ["\r", "\n", "\r\n", "\0"];

describe("the one outbound IRC writer", () => {
  test("free text never carries a line break or NUL onto the wire", () => {
    for (const bad of NASTY) {
      const line = buildLine("PART", ["#chan"], `bye${bad}PRIVMSG NickServ :SET PASSWORD pwned`);
      assert.equal(line, "PART #chan :bye PRIVMSG NickServ :SET PASSWORD pwned");
      assert.ok(!/[\r\n\0]/.test(line));
    }
  });

  test("words with line breaks, spaces or a leading colon are refused, whatever the command", () => {
    for (const bad of [...NASTY.map((b) => `a${b}QUIT`), "a b", ":x", "", "x\ty"]) {
      assert.throws(() => buildLine("WHOIS", [bad]), UnsafeLineError, JSON.stringify(bad));
      assert.throws(() => buildLine("JOIN", ["#new", bad]), UnsafeLineError, JSON.stringify(bad));
    }
    assert.throws(() => buildLine("PRIV MSG", ["x"]), UnsafeLineError);
    assert.throws(() => buildLine("QUIT\r\n", []), UnsafeLineError);
  });

  test("the trailing text always gets its colon, so empty and spaced texts are kept", () => {
    assert.equal(buildLine("TOPIC", ["#c"], ""), "TOPIC #c :");
    assert.equal(buildLine("KICK", ["#c", "bob"], ":) bye now"), "KICK #c bob ::) bye now");
    assert.equal(buildLine("MODE", ["#c"]), "MODE #c");
  });

  test("texts are cut to the command's limit and to 512 bytes, never inside a character", () => {
    assert.equal(buildLine("KICK", ["#c", "bob"], "x".repeat(300), { maxTextBytes: 255 }), `KICK #c bob :${"x".repeat(255)}`);
    const long = buildLine("PRIVMSG", ["#c"], "é".repeat(400));
    assert.ok(Buffer.byteLength(long) <= 510);
    assert.ok(!long.includes("\ufffd"));
    assert.equal(cutToBytes("aé", 2), "a");
  });

  test("tag values are escaped, tag names checked", () => {
    assert.equal(buildLine("TAGMSG", ["#c"], undefined, { tags: { "+typing": "active", "+x": "a b;c\r\n" } }), "@+typing=active;+x=a\\sb\\:c\\r\\n TAGMSG #c");
    assert.throws(() => buildLine("TAGMSG", ["#c"], undefined, { tags: { "a b": "x" } }), UnsafeLineError);
  });

  test("long messages split at spaces within the byte budget, never inside a character", () => {
    const text = Array.from({ length: 80 }, (_, i) => `wörd${i}`).join(" ");
    const pieces = splitMessage(text, 100);
    assert.ok(pieces.length > 1);
    for (const piece of pieces) assert.ok(Buffer.byteLength(piece) <= 100, piece);
    assert.equal(pieces.join(" "), text);
    const unbroken = "ü".repeat(120);
    assert.equal(splitMessage(unbroken, 101).join(""), unbroken);
  });

  test("a typed command line is read into parameters, and line breaks refused", () => {
    assert.deepEqual(parseCommandLine("AWAY :gone home"), { command: "AWAY", words: [], text: "gone home" });
    assert.deepEqual(parseCommandLine("MODE #c +o nick"), { command: "MODE", words: ["#c", "+o", "nick"] });
    assert.throws(() => parseCommandLine("AWAY x\r\nQUIT"), UnsafeLineError);
  });

  test("each line a long message is split into costs one flood-control token", async () => {
    const written: string[] = [];
    const client = { raw: (line: string) => written.push(line), user: { nick: "alice" }, network: { options: {} }, connection: { connected: true, transport: { writeLine: (line: string) => written.push(line) } } } as unknown as Client;
    const writer = new IrcWriter(client, new SendPacer(2, 1000));
    const started = Date.now();
    const pieces = writer.pieces("privmsg", "#c", "word ".repeat(300));
    await writer.message("privmsg", "#c", pieces);
    assert.equal(written.length, pieces.length);
    assert.ok(pieces.length >= 4);
    // 2 at once, then 1 per ms: the rest waited for the pacer rather than going out at once.
    assert.ok(Date.now() - started >= 1);
    await assert.rejects(writer.send("WHOIS", ["a\r\nQUIT"]), UnsafeLineError);
    assert.ok(written.every((l) => !/[\r\n\0]/.test(l)));
  });

  test("no CTCP of anyone's choosing: \\x01 in a message's text is dropped, wherever a split would put it; ACTION keeps its wrapper", async () => {
    const written: string[] = [];
    const client = { raw: (line: string) => written.push(line), user: { nick: "bot" }, network: { options: {} }, connection: { connected: true, transport: { writeLine: (line: string) => written.push(line) } } } as unknown as Client;
    const writer = new IrcWriter(client, new SendPacer(100, 1000));
    const hostile = `${"x".repeat(380)}\x01DCC SEND evil.exe 2130706433 4444 1000\x01`;
    await writer.message("privmsg", "op", writer.pieces("privmsg", "op", hostile));
    await writer.message("privmsg", "op", ["raw \x01VERSION\x01 piece"]);
    await writer.message("action", "#c", writer.pieces("action", "#c", "waves \x01"));
    assert.ok(written.slice(0, -1).every((l) => !l.includes("\x01")), written.join("\n"));
    assert.match(written.at(-1)!, /:\x01ACTION waves \x01$/);
  });

  test("a line the library would drop (socket closed or closing) is not counted as written; QUIT fails what waits", async () => {
    const written: string[] = [];
    const connection = { connected: false, requested_disconnect: false, transport: { writeLine: (line: string) => written.push(line) } };
    const client = { raw: (line: string) => written.push(line), quit: () => undefined, user: { nick: "a" }, network: { options: {} }, connection } as unknown as Client;
    const writer = new IrcWriter(client, new SendPacer(2, 0.001));
    await assert.rejects(writer.send("PRIVMSG", ["#c"], "lost?"), (err: IrcFailure) => err.code === "disconnected");
    connection.connected = true;
    await writer.send("PRIVMSG", ["#c"], "first");
    const waiting = writer.send("PRIVMSG", ["#c"], "waits for flood control");
    writer.quit("bye");
    await assert.rejects(waiting, (err: IrcFailure) => err.code === "stopped");
    assert.deepEqual(written, ["PRIVMSG #c :first"]);
  });
});

describe("the writer's line budget and tags (issue 14)", () => {
  const fake = (written: string[]) =>
    ({ raw: (line: string) => written.push(line), user: { nick: "alice" }, network: { options: {} }, connection: { connected: true, transport: { writeLine: (line: string) => written.push(line) } } }) as unknown as Client;

  test("the real host, once the server told it, sets the budget; a long message uses all of it", () => {
    const writer = new IrcWriter(fake([]), new SendPacer(100, 1000));
    const text = "x".repeat(1000);
    const assumed = writer.pieces("privmsg", "#c", text)[0].length;
    writer.setSelf({ user: "alice", host: "h" });
    const real = writer.pieces("privmsg", "#c", text)[0].length;
    assert.equal(real, 510 - ":alice!alice@h ".length - "PRIVMSG #c :".length);
    assert.ok(real > assumed);
    writer.setSelf(null);
    assert.equal(writer.pieces("privmsg", "#c", text)[0].length, assumed);
  });

  test("tags go on the first line of a split message only; formatting is reopened on the next", async () => {
    const written: string[] = [];
    const writer = new IrcWriter(fake(written), new SendPacer(100, 1000));
    await writer.message("privmsg", "#c", writer.pieces("privmsg", "#c", `\x02${"word ".repeat(150)}`), { "+reply": "m1" });
    assert.ok(written.length >= 2);
    assert.match(written[0], /^@\+reply=m1 PRIVMSG #c :\x02word/);
    for (const line of written.slice(1)) assert.match(line, /^PRIVMSG #c :\x02word/);
  });
});
