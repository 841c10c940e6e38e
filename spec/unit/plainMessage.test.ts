import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Client } from "irc-framework";
import { malformedReason } from "../../src/irc/lineFilter.js";
import { emitPlainMessage, readPlainMessage, type PlainMessageClient } from "../../src/irc/plainMessage.js";

/** A bare irc-framework client whose server offers STATUSMSG=@+ (lines go in as if read from a socket). */
function libraryClient(isupport: string | null = "STATUSMSG=@+ CHANTYPES=#"): Client & { connection: { addReadBuffer(line: string): void } } {
  const client = new Client() as Client & { connection: { addReadBuffer(line: string): void } };
  if (isupport !== null) client.connection.addReadBuffer(`:irc.example.net 005 me ${isupport} :are supported by this server\r\n`);
  return client;
}

const MESSAGE_EVENTS = ["privmsg", "notice", "action", "ctcp request", "ctcp response"];

/** What the library itself emits for `line`: [event name, event without its reply() helper]. */
function libraryEvents(client: ReturnType<typeof libraryClient>, line: string): [string, Record<string, unknown>][] {
  const seen: [string, Record<string, unknown>][] = [];
  const listeners = MESSAGE_EVENTS.map((name) => [name, (e: Record<string, unknown>) => seen.push([name, Object.fromEntries(Object.entries(e).filter(([k]) => k !== "reply"))])] as const);
  for (const [name, fn] of listeners) client.on(name, fn);
  client.connection.addReadBuffer(line);
  for (const [name, fn] of listeners) client.off(name, fn);
  return seen;
}

/** Lines the fast path takes: its event must be the library's, field for field. */
const TAKEN = [
  "@time=2026-11-24T07:11:37.300Z;msgid=abc123;account=alice :alice!~a@host.example PRIVMSG #chan :hello there\r\n",
  ":alice!~a@host.example PRIVMSG #chan :hello\r\n",
  ":alice!~a@host.example PRIVMSG #chan one-word\r\n",
  ":alice!~a@host.example PRIVMSG #chan ::leading colon\r\n",
  ":alice!~a@host.example PRIVMSG #chan :\r\n",
  ":alice!~a@host.example  PRIVMSG   #chan   :  spaced  out  \r\n",
  ":alice!~a@host.example NOTICE #chan :a notice\r\n",
  ":alice!~a@host.example NOTICE me :a private notice\r\n",
  ":alice!~a@host.example PRIVMSG me :a private line\r\n",
  ":alice!~a@host.example PRIVMSG #chan :\x01ACTION waves\x01\r\n",
  ":alice!~a@host.example PRIVMSG #chan :\x01action waves\x01\r\n",
  ":alice!~a@host.example PRIVMSG #chan :\x01ACTION\x01\r\n",
  ":alice!~a@host.example PRIVMSG @#chan :to the ops\r\n",
  ":alice!~a@host.example PRIVMSG +#chan :\x01ACTION whispers to voices\x01\r\n",
  "@msgid=a\\:b\\sc\\\\d\\x;+draft/reply=r1;flag;+example.com/z= :alice!~a@host.example PRIVMSG #chan :escaped tags\r\n",
  "@MSGID=upper;Time=2026-11-24T07:11:37Z :alice!~a@host.example PRIVMSG #chan :tag names fold\r\n",
  "@time=1700000000.5 :alice!~a@host.example PRIVMSG #chan :znc time\r\n",
  "@time=garbage :alice!~a@host.example PRIVMSG #chan :bad time\r\n",
  "@time= :alice!~a@host.example PRIVMSG #chan :empty time\r\n",
  ":alice PRIVMSG #chan :nick only\r\n",
  ":alice@host PRIVMSG #chan :nick and host\r\n",
  ":alice!~a@host.example PRIVMSG #chan extra :three params\r\n",
  ":alice!~a@host.example PRIVMSG #chan :caf\u00e9 \u{1F600}\r\n",
];

/** Lines left to the library (it may or may not emit something for them). */
const LEFT = [
  ":irc.example.net NOTICE * :*** Looking up your hostname\r\n",
  "NOTICE AUTH :*** no prefix\r\n",
  ":alice!~a@host.example PRIVMSG #chan :\x01VERSION\x01\r\n",
  ":alice!~a@host.example NOTICE me :\x01VERSION irssi\x01\r\n",
  ":alice!~a@host.example NOTICE me :\x01ACTION in a notice\x01\r\n",
  "@batch=b1 :alice!~a@host.example PRIVMSG #chan :in a batch\r\n",
  ":alice!~a@host.example privmsg #chan :lower-case command\r\n",
  ":alice!~a@host.example PRIVMSG #chan\r\n",
  ":alice!~a@host.example TAGMSG #chan\r\n",
  ":alice!~a@host.example JOIN #chan\r\n",
  ":irc.example.net 001 me :Welcome\r\n",
  " :alice!~a@host.example PRIVMSG #chan :leading space\r\n",
  "@msgid=x\r\n",
  "@__proto__=x :alice!~a@host.example PRIVMSG #chan :a tag the copy would lose\r\n",
];

describe("PRIVMSG and NOTICE lines handed to the client without irc-framework's dispatch", () => {
  test("each line it takes becomes the library's own event, field for field", () => {
    const client = libraryClient();
    for (const line of TAKEN) {
      const read = readPlainMessage(line, client.network as unknown as PlainMessageClient["network"]);
      assert.ok(read, `taken: ${JSON.stringify(line)}`);
      const library = libraryEvents(client, line);
      assert.equal(library.length, 1, `the library emits one event for ${JSON.stringify(line)}`);
      assert.equal(read.kind, library[0][0], JSON.stringify(line));
      assert.deepEqual({ ...read.event }, library[0][1], JSON.stringify(line));
    }
  });

  test("status-message targets are split as the library splits them, whatever the server's STATUSMSG", () => {
    const targets = ["#chan", "@#chan", "+#chan", "&chan", "@&chan", "~#chan", "%#chan", "nick", "@"];
    for (const isupport of [null, "STATUSMSG=@+ CHANTYPES=#", "STATUSMSG=~&@%+ CHANTYPES=#&", "CHANTYPES=#"]) {
      const client = libraryClient(isupport);
      for (const target of targets) {
        const line = `:alice!~a@host.example PRIVMSG ${target} :hi\r\n`;
        const read = readPlainMessage(line, client.network as unknown as PlainMessageClient["network"]);
        const library = libraryEvents(client, line);
        assert.ok(read && library.length === 1, `${isupport}: ${target}`);
        assert.deepEqual([read.event.target, read.event.group], [library[0][1].target, library[0][1].group], `${isupport}: ${target}`);
      }
    }
  });

  test("lines it does not take are left to the library", () => {
    const client = libraryClient();
    for (const line of LEFT) assert.equal(readPlainMessage(line, client.network as unknown as PlainMessageClient["network"]), null, JSON.stringify(line));
  });

  test("a line it takes is never one malformedReason refuses (the transport checks only the lines left to the library)", () => {
    const network = libraryClient().network as unknown as PlainMessageClient["network"];
    let seed = 20261124;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 4294967296;
    };
    const pick = <T>(from: readonly T[]): T => from[Math.floor(next() * from.length)];
    const spaces = () => " ".repeat(1 + Math.floor(next() * 3));
    const words = ["#chan", "me", "", ":", "::", ":x y", "a:b", "\x01ACTION hi\x01", "@#chan", "x", "\t"];
    let taken = 0;
    for (let i = 0; i < 40_000; i++) {
      let line = pick(["", "\r\n", "\n"]);
      if (next() < 0.5) line += `@${pick(["a=b", "time=1", "msgid=m;account=a", "", "x=\\s"])}${spaces()}`;
      if (next() < 0.8) line += `:${pick(["n!u@h", "n", "n@h", "irc.example.net", "", "!@", "a@b!c"])}${spaces()}`;
      line += pick(["PRIVMSG", "NOTICE", "privmsg"]);
      const params = Math.floor(next() * 4);
      for (let p = 0; p < params; p++) line += spaces() + pick(words);
      line += pick(["", "\r\n", " ", "\r"]);
      const read = readPlainMessage(line, network);
      if (read === null) continue;
      taken++;
      assert.equal(malformedReason(line), null, JSON.stringify(line));
    }
    for (const line of TAKEN) assert.equal(malformedReason(line), null, JSON.stringify(line));
    assert.ok(taken > 1_000, `${taken} random lines taken`);
  });

  test("the event reaches the client's listeners; with a raw listener, a middleware or a 'message' listener the library handles the line", () => {
    const client = libraryClient();
    const got: unknown[] = [];
    client.on("privmsg", (e: { message: string }) => got.push(e.message));
    const line = ":alice!~a@host.example PRIVMSG #chan :hi\r\n";
    const plain = client as unknown as PlainMessageClient;
    assert.equal(emitPlainMessage(plain, line), true);
    assert.deepEqual(got, ["hi"]);

    const onRaw = () => undefined;
    client.on("raw", onRaw);
    assert.equal(emitPlainMessage(plain, line), false, "a raw command's exchange reads every raw line");
    client.off("raw", onRaw);
    const onMessage = () => undefined;
    client.on("message", onMessage);
    assert.equal(emitPlainMessage(plain, line), false, "the library's extra 'message' event has a listener");
    client.off("message", onMessage);
    (client as unknown as { use(fn: unknown): void }).use((_client: unknown, raw: { use(fn: unknown): void }) => raw.use((_cmd: unknown, _msg: unknown, _line: unknown, _c: unknown, next: () => void) => next()));
    assert.equal(emitPlainMessage(plain, line), false, "middleware sees every line");
    assert.deepEqual(got, ["hi"], "nothing was emitted by the refusals");
  });
});
