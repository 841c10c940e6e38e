/** The byte splitter, edit lines, replies, long messages and the multiline batch builder (issue 14). */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { editLine } from "../../src/format/edits.js";
import { plainOf } from "../../src/format/ircFormat.js";
import { effectiveLineLimit, SplitFallback } from "../../src/format/longMessages.js";
import { ircLinesOf, isBridgeCommand } from "../../src/format/matrixContent.js";
import { multilineBatch } from "../../src/format/multiline.js";
import { relationOf, stripReplyFallback } from "../../src/format/replies.js";
import { splitIrcText } from "../../src/format/split.js";
import { decodeLine } from "../../src/irc/IrcTransport.js";
import { messageBudget } from "../../src/irc/IrcWriter.js";

const bytes = (s: string) => Buffer.byteLength(s);

describe("the byte splitter", () => {
  test("short text is one piece", () => assert.deepEqual(splitIrcText("hello", 10), ["hello"]));

  test("splits at word boundaries, and the pieces join back", () => {
    const text = "alpha beta gamma delta epsilon zeta eta theta";
    const pieces = splitIrcText(text, 16);
    for (const p of pieces) assert.ok(bytes(p) <= 16, p);
    assert.equal(pieces.join(" "), text);
    assert.deepEqual(pieces, ["alpha beta gamma", "delta epsilon", "zeta eta theta"]);
  });

  test("multi-byte characters at the boundary are never cut", () => {
    for (const char of ["é", "€", "😀", "👩‍👩‍👧"]) {
      const text = char.repeat(40);
      for (let max = 8; max < 30; max++) {
        const pieces = splitIrcText(text, max);
        for (const p of pieces) {
          assert.ok(bytes(p) <= max, `${char} ${max}: ${bytes(p)}`);
          assert.ok(!p.includes("\ufffd"));
          assert.equal(Buffer.from(p).toString(), p);
        }
        assert.equal(pieces.join(""), text, `${char} at ${max}`);
      }
    }
  });

  test("formatting is reopened on the next piece, and never split inside a code", () => {
    const text = `\x02bold \x0304,01red ${"word ".repeat(10)}end`;
    const pieces = splitIrcText(text, 20);
    for (const p of pieces.slice(1)) assert.ok(p.startsWith("\x02\x0304,01"), JSON.stringify(p));
    assert.equal(pieces.map(plainOf).join(" "), plainOf(text).replace(/ +$/, ""));
    for (const p of pieces) assert.ok(bytes(p) <= 20);
  });

  test("a digit after a reopened colour stays text", () => {
    const pieces = splitIrcText(`\x0304aaaa 1234`, 9);
    assert.deepEqual(pieces, ["\x0304aaaa", "\x0304\x02\x021234"]);
  });

  test("a reset before the cut reopens nothing", () => {
    assert.deepEqual(splitIrcText("\x02b\x0f plain words here", 12), ["\x02b\x0f plain", "words here"]);
  });

  test("the line budget counts the real prefix when the host is known", () => {
    assert.equal(messageBudget("nick", "user", "host.example", "PRIVMSG", "#c"), 510 - ":nick!user@host.example ".length - "PRIVMSG #c :".length);
    assert.ok(messageBudget("nick", null, null, "PRIVMSG", "#c") < messageBudget("nick", "u", "h", "PRIVMSG", "#c"));
  });
});

describe("edit lines", () => {
  const cases: [string, string, string, "diff" | "full" | "off", string | null][] = [
    ["appending words sends only them", "the meeting is at", "the meeting is at noon", "diff", "noon"],
    ["appending punctuation", "done", "done!", "diff", "!"],
    ["appending to a word is not appending words", "hell", "hello", "diff", "s/hell/hello/"],
    ["one short substitution", "I like cats a lot", "I like dogs a lot", "diff", "s/cats/dogs/"],
    ["a big rewrite is the full text", "short", "an entirely different sentence from the first", "diff", "* an entirely different sentence from the first"],
    ["a substitution of text with a slash is the full text", "see a/b here", "see c/d here", "diff", "* see c/d here"],
    ["an ambiguous substitution is the full text", "no no no", "no yes no", "diff", "* no yes no"],
    ["no change sends nothing", "same", "same", "diff", null],
    ["full mode", "a", "a b", "full", "* a b"],
    ["off mode", "a", "a b", "off", null],
  ];
  for (const [name, before, after, mode, expected] of cases) test(name, () => assert.equal(editLine(before, after, mode), expected));
});

describe("Matrix content → IRC lines", () => {
  test("the plain reply fallback is removed", () => {
    assert.equal(stripReplyFallback("> <@bob:hs> question\n> more\n\nanswer"), "answer");
    assert.equal(stripReplyFallback("> quoting myself\nok"), "> quoting myself\nok");
    assert.deepEqual(ircLinesOf({ body: "> <@bob:hs> q\n\nanswer" }), ["answer"]);
  });

  test("HTML wins over the body, and falls back to it when empty", () => {
    assert.deepEqual(ircLinesOf({ body: "x", format: "org.matrix.custom.html", formatted_body: "<b>x</b>" }), ["\x02x"]);
    assert.deepEqual(ircLinesOf({ body: "fallback", format: "org.matrix.custom.html", formatted_body: "<mx-reply>q</mx-reply>" }), ["fallback"]);
  });

  test("no line break, NUL or CTCP from HTML either", () => {
    for (const line of ircLinesOf({ body: "", format: "org.matrix.custom.html", formatted_body: "<pre>a\r\nQUIT\u0000\u0001x</pre>" })) assert.doesNotMatch(line, /[\r\n\0\x01]/);
  });

  test("!irc commands are recognised", () => {
    assert.ok(isBridgeCommand({ body: "!irc nick bob" }));
    assert.ok(isBridgeCommand({ body: "!irc" }));
    assert.ok(!isBridgeCommand({ body: "!ircx" }));
    assert.ok(!isBridgeCommand({ body: "hi !irc" }));
  });

  test("replies, threads and edits", () => {
    assert.deepEqual(relationOf({ "m.relates_to": { "m.in_reply_to": { event_id: "$a" } } }), { replyTo: "$a", replaces: null });
    assert.deepEqual(relationOf({ "m.relates_to": { rel_type: "m.thread", event_id: "$root", "m.in_reply_to": { event_id: "$last" }, is_falling_back: true } }), { replyTo: "$root", replaces: null });
    assert.deepEqual(relationOf({ "m.relates_to": { rel_type: "m.replace", event_id: "$e" } }), { replyTo: null, replaces: "$e" });
    assert.deepEqual(relationOf({}), { replyTo: null, replaces: null });
  });
});

describe("long messages and multiline", () => {
  test("the split fallback sends every line and tells the sender past the limit", async () => {
    const policy = new SplitFallback();
    assert.deepEqual(await policy.shorten(["a", "b"], 3, { roomId: "!r", sender: "@a" }), { lines: ["a", "b"], notice: null });
    const long = await policy.shorten(Array.from({ length: 20 }, (_, i) => String(i)), 3, { roomId: "!r", sender: "@a" });
    assert.equal(long.lines.length, 20);
    assert.match(long.notice!, /20 lines.*limit of 3/);
    // A single line that IRC takes as several counts as several.
    assert.match((await policy.shorten(["one long line"], 3, { roomId: "!r", sender: "@a", ircLines: 5 })).notice!, /5 lines/);
  });

  test("a room's limit applies within the operator's maximum", () => {
    assert.equal(effectiveLineLimit(3, 10, null), 3);
    assert.equal(effectiveLineLimit(3, 10, 1), 1);
    assert.equal(effectiveLineLimit(3, 10, 50), 10);
  });

  test("draft/multiline batch within max-bytes and max-lines", () => {
    assert.deepEqual(multilineBatch("b1", "#c", ["one", "two"], { maxBytes: 100, maxLines: 5 }, { "+reply": "m1" }), [
      { command: "BATCH", words: ["+b1", "draft/multiline", "#c"], tags: { "+reply": "m1" } },
      { command: "PRIVMSG", words: ["#c"], text: "one", tags: { batch: "b1" } },
      { command: "PRIVMSG", words: ["#c"], text: "two", tags: { batch: "b1" } },
      { command: "BATCH", words: ["-b1"] },
    ]);
    assert.equal(multilineBatch("b1", "#c", ["one", "two"], { maxBytes: 6 }), null);
    assert.equal(multilineBatch("b1", "#c", ["a", "b", "c"], { maxBytes: 100, maxLines: 2 }), null);
    assert.equal(multilineBatch("b1", "#c", ["single"], { maxBytes: 100 }), null);
  });
});

describe("decoding lines from IRC", () => {
  test("valid UTF-8 stays UTF-8; anything else is read with the fallback, per line", () => {
    assert.equal(decodeLine(Buffer.from("café\r\n"), "utf8", "latin1"), "café\r\n");
    assert.equal(decodeLine(Buffer.from("caf\xe9\r\n", "latin1"), "utf8", "latin1"), "café\r\n");
    assert.equal(decodeLine(Buffer.from([0x80, 0x0d, 0x0a]), "utf8", "cp1252"), "€\r\n");
    assert.equal(decodeLine(Buffer.from("caf\xe9", "latin1"), "utf8", null), "caf\ufffd");
  });
});
