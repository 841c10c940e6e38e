/**
 * The quiet connection's filter read from bytes (issue 16: no strings made for the lines a
 * puppet drops) says exactly what the string version says, on known lines and on many
 * generated ones.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isAboutOthers, isAboutOthersIn } from "../../src/irc/lineFilter.js";

const ME = "alice[m]";
const KNOWN = [
  "@time=x;msgid=1 :bob!b@h JOIN #c * :Bob\r\n",
  ":bob!b@h QUIT :bye",
  ":bob!b@h QUIT\r\n",
  ":irc.test 353 alice[m] = #c :a b c",
  ":irc.test 366 alice[m] #c :End of /NAMES list.",
  ":alice[m]!a@h JOIN #c * :Alice",
  ":alice[m] NICK :alice2",
  ":bob!b@h PRIVMSG #c :JOIN me",
  "@+typing=active :alice[m]!a@h TAGMSG #c",
  "@time=x;+typing=active :bob!b@h TAGMSG :#c",
  ":bob!b@h REDACT #c m1 :oops",
  "PING :irc.test",
  "@tags-without-space",
  ":onlyprefix",
  ":bob!b@h MODE\t\r\n",
  ":bob!b@h CHGHOST\u00a0 x",
  ":b!ob JOIN #c",
  "!:bob JOIN #c",
  ":alice[m]x!a@h PART #c",
  ":ALICE[M]!a@h PART #c",
  ":irc.test 001 alice[m] :Welcome",
];

function bytesSay(line: string, head: number): boolean {
  const buffer = Buffer.concat([Buffer.from("xyz"), Buffer.from(line, "latin1"), Buffer.from("tail")]);
  return isAboutOthersIn(buffer, 3, 3 + Buffer.byteLength(line, "latin1"), ME, head);
}

function stringSays(line: string, head: number): boolean {
  return isAboutOthers(line.slice(0, head), ME);
}

describe("isAboutOthersIn", () => {
  test("agrees with isAboutOthers on known lines", () => {
    for (const line of KNOWN) {
      for (const head of [600, 12, 5]) assert.equal(bytesSay(line, head), stringSays(line, head), `${JSON.stringify(line)} (head ${head})`);
    }
  });

  test("agrees with isAboutOthers on 20,000 generated lines", () => {
    const parts = ["@", "t=1", " ", ":", "bob", "alice[m]", "!", "u@h", "JOIN", "QUIT", "353", "PRIVMSG", "#c", "\r\n", "\t", "\u00a0", "MODE", "TAGMSG", "x", "ACCOUNT", "SETNAMEX"];
    let seed = 12345;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let k = 0; k < 20_000; k++) {
      const line = Array.from({ length: 1 + next(9) }, () => parts[next(parts.length)]).join("");
      const head = [600, 8, 14][next(3)];
      assert.equal(bytesSay(line, head), stringSays(line, head), `${JSON.stringify(line)} (head ${head})`);
    }
  });
});
