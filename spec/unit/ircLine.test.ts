import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { describe, test } from "node:test";
import { decodeTagValue, parseIrcLine, type IrcLine } from "../../src/irc/ircLine.js";

const require = createRequire(import.meta.url);
/** The library's parser (its message object has these fields, and more we do not read). */
const libraryParse = require("irc-framework/src/irclineparser") as (line: string) => IrcLine;

/** The fields we read, from the library's parse of `line` (its tags copied to a plain object). */
function library(line: string): IrcLine {
  const parsed = libraryParse(line);
  return { tags: { ...parsed.tags }, nick: parsed.nick, ident: parsed.ident, hostname: parsed.hostname, command: parsed.command, params: parsed.params };
}

function assertSameAsLibrary(line: string): void {
  const ours = parseIrcLine(line);
  if (Object.hasOwn(libraryParse(line).tags, "__proto__")) {
    assert.equal(ours, null, JSON.stringify(line));
    return;
  }
  assert.deepEqual(ours, library(line), JSON.stringify(line));
}

const CRAFTED = [
  "@time=2026-11-24T07:11:37.300Z;msgid=abc123;account=alice :alice!~a@host.example PRIVMSG #chan :hello there",
  ":alice!~a@host.example PRIVMSG #chan :hello\r\n",
  "\r\n\r\n:alice!~a@host.example PRIVMSG #chan :crlf runs at both ends\r\n\n",
  ":alice!~a@host.example PRIVMSG #chan :cr\rin the middle\nstays",
  ":alice!~a@host.example  PRIVMSG   #chan   :  spaced  out  ",
  ":alice!~a@host.example PRIVMSG #chan one-word",
  ":alice!~a@host.example PRIVMSG #chan ::leading colon",
  ":alice!~a@host.example PRIVMSG #chan :",
  ":alice!~a@host.example PRIVMSG #chan a:b c :d e",
  ":alice!~a@host.example PRIVMSG #chan   ",
  "@msgid=a\\:b\\sc\\\\d\\x;+draft/reply=r1;flag;+example.com/z= :a!b@c PRIVMSG #c :escaped",
  "@a=\\S\\N\\R\\s\\n\\r\\;b=\\ :a!b@c PRIVMSG #c :case-insensitive escapes and a trailing backslash",
  "@a=x=y=z;;;b;=novalue;C=Up :a!b@c PRIVMSG #c :equals in values, empty tags, a nameless one",
  "@MSGID=upper;Time=2026-11-24T07:11:37Z :a!b@c PRIVMSG #c :tag names fold",
  "@__proto__=x :a!b@c PRIVMSG #c :a tag that would touch the prototype",
  "@__PROTO__=x :a!b@c PRIVMSG #c :the same once folded",
  "@constructor=c;toString=t;hasOwnProperty=h :a!b@c PRIVMSG #c :names found on Object.prototype",
  "@ :a!b@c PRIVMSG #c :empty tags token",
  "@a=b",
  "@a=b   ",
  ":prefix.only",
  ":nick",
  "",
  "   ",
  "\r\n",
  "PING :irc.example.net",
  "   PRIVMSG #c :leading spaces, no prefix",
  "  :a!b@c PRIVMSG #c :leading spaces before a prefix",
  ":alice PRIVMSG #chan :nick only",
  ":irc.example.net NOTICE * :server",
  ":alice@host PRIVMSG #chan :nick and host",
  ":alice!ident PRIVMSG #chan :nick and ident",
  ":a@b!c PRIVMSG #chan :@ before !",
  ":a!b!c@d@e PRIVMSG #chan :two of each",
  ":!@ PRIVMSG #chan :empty parts",
  ": PRIVMSG #chan :empty prefix",
  ":a!b@c privmsg #chan :lower-case command",
  ":a!b@c PRIVMSG #chan :caf\u00e9 \u{1F600}",
  ":a!b@c PRIVMSG\t#chan :a tab is not a separator",
  ":a!b@c PRIVMSG #chan :\x01ACTION waves\x01",
];

/** A small seeded generator (mulberry32), so a failing line can be found again. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = [" ", "  ", ":", "@", "!", ";", "=", "\\", "s", "S", "n", "N", "r", "R", ":", "x", "é", "\r", "\n", "\t", "#c", "PRIVMSG", "notice", "__proto__", "a=b", "\x01"];

describe("parseIrcLine", () => {
  test("reads crafted lines as irc-framework's parser does", () => {
    for (const line of CRAFTED) assertSameAsLibrary(line);
  });

  test("reads 20,000 random lines as irc-framework's parser does", () => {
    const next = random(20261124);
    for (let i = 0; i < 20_000; i++) {
      let line = next() < 0.5 ? "@" : next() < 0.5 ? ":" : "";
      const pieces = 1 + Math.floor(next() * 24);
      for (let p = 0; p < pieces; p++) line += PIECES[Math.floor(next() * PIECES.length)];
      assertSameAsLibrary(line);
    }
  });

  test("undoes tag escapes as the library does", () => {
    assert.equal(decodeTagValue("plain"), "plain");
    assert.equal(decodeTagValue("a\\sb\\:c\\\\d\\ne\\rf"), "a b;c\\d\ne\rf");
    assert.equal(decodeTagValue("\\S\\N\\R\\x\\"), "x");
  });

  test("gives each line its own plain tags object", () => {
    const a = parseIrcLine("@k=v :a!b@c PRIVMSG #c :x")!;
    const b = parseIrcLine("@k=v :a!b@c PRIVMSG #c :x")!;
    assert.notEqual(a.tags, b.tags);
    assert.equal(Object.getPrototypeOf(a.tags), Object.prototype);
  });
});
