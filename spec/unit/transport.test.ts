import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { IrcTransport, MAX_LINE_BYTES, type TransportListener } from "../../src/irc/IrcTransport.js";
import { malformedReason } from "../../src/irc/lineFilter.js";
import { IrcConnection } from "../../src/irc/IrcConnection.js";
import { ConnectScheduler } from "../../src/irc/ConnectScheduler.js";
import { LineFaults, type LineFaultReason } from "../../src/irc/lineFaults.js";

function transport(quiet = false) {
  const faults: { reason: LineFaultReason; detail: string }[] = [];
  const listener: TransportListener = { nick: "me", hearsAll: false, options: { networkId: "net", quiet }, heardAt: 0 };
  const t = new IrcTransport({ listener, lineFaults: { report: (_n: string, reason: LineFaultReason, detail: string) => faults.push({ reason, detail }) } as unknown as LineFaults });
  const lines: string[] = [];
  t.on("line", (line: string) => lines.push(line));
  const feed = (...chunks: (string | Buffer)[]) => {
    for (const c of chunks) t.onSocketData(Buffer.isBuffer(c) ? c : Buffer.from(c));
  };
  return { t, lines, faults, feed };
}

describe("IrcTransport", () => {
  test("a partial line is kept as a copy: the read buffer is reused for the next read (one buffer for every socket)", () => {
    const { t, lines } = transport();
    const shared = Buffer.alloc(64);
    const read = (text: string) => {
      shared.fill(0x58);
      const n = shared.write(text, "latin1");
      t.onSocketData(shared.subarray(0, n));
    };
    read(":bob!b@h PRIVMSG #c :hel");
    read("lo\r\n:bob!b@h PRIVMSG #c :again\r\n");
    assert.deepEqual(lines, [":bob!b@h PRIVMSG #c :hello\r\n", ":bob!b@h PRIVMSG #c :again\r\n"]);
  });

  test("a line without LF growing to megabytes is dropped with one report, never buffered past the bound", () => {
    const { t, lines, faults, feed } = transport();
    feed(":a!b@c PRIVMSG #c :before\r\n");
    const chunk = Buffer.alloc(64 * 1024, "X");
    let largest = 0;
    for (let sent = 0; sent < 2 * 1024 * 1024; sent += chunk.length) {
      feed(chunk);
      largest = Math.max(largest, t.incoming_buffer.length);
    }
    feed("XXXX\r\n:a!b@c PRIVMSG #c :after\r\n");
    assert.deepEqual(lines, [":a!b@c PRIVMSG #c :before\r\n", ":a!b@c PRIVMSG #c :after\r\n"]);
    assert.ok(largest <= MAX_LINE_BYTES, `buffered ${largest} bytes`);
    assert.deepEqual(faults.map((f) => f.reason), ["too_long"]);
    assert.equal(t.incoming_buffer.length, 0);
  });

  test("a complete over-long line in one chunk is dropped; the lines around it pass", () => {
    const { lines, faults, feed } = transport();
    feed(`:a PRIVMSG #c :one\r\n:a PRIVMSG #c :${"y".repeat(MAX_LINE_BYTES)}\r\n:a PRIVMSG #c :two\r\n`);
    assert.deepEqual(lines, [":a PRIVMSG #c :one\r\n", ":a PRIVMSG #c :two\r\n"]);
    assert.deepEqual(faults.map((f) => f.reason), ["too_long"]);
  });

  test("a line at the bound passes, even split across chunks", () => {
    const { lines, faults, feed } = transport();
    const head = ":a PRIVMSG #c :";
    const line = `${head}${"z".repeat(MAX_LINE_BYTES - head.length - 2)}\r\n`;
    assert.equal(Buffer.byteLength(line), MAX_LINE_BYTES);
    feed(line.slice(0, 5000), line.slice(5000, 12000), line.slice(12000));
    assert.deepEqual(lines, [line]);
    assert.deepEqual(faults, []);
  });

  test("a listener that throws loses that line only; the next lines are handled", () => {
    const { t, lines, faults, feed } = transport();
    t.on("line", (line: string) => {
      if (line.includes("boom")) throw new TypeError("cannot read properties of undefined");
    });
    feed(":a PRIVMSG #c :boom\r\n:a PRIVMSG #c :fine\r\n");
    assert.deepEqual(lines, [":a PRIVMSG #c :boom\r\n", ":a PRIVMSG #c :fine\r\n"]);
    assert.deepEqual(faults, [{ reason: "failed", detail: "cannot read properties of undefined" }]);
  });

  test("malformed lines never reach irc-framework; invalid UTF-8, NUL and bare CR lines do, decoded", () => {
    const { lines, faults, feed } = transport();
    feed(":evil!u@h JOIN\r\n", ":hostile 001\r\n", Buffer.from([0x3a, 0x61, 0x20, 0x50, 0x52, 0x49, 0x56, 0x4d, 0x53, 0x47, 0x20, 0x23, 0x63, 0x20, 0x3a, 0xff, 0x0d, 0x0a]));
    feed(":a PRIVMSG #c :nul\u0000 and\rcr\r\n");
    assert.deepEqual(lines, [":a PRIVMSG #c :\ufffd\r\n", ":a PRIVMSG #c :nul\u0000 and\rcr\r\n"]);
    assert.deepEqual(faults.map((f) => f.reason), ["malformed", "malformed"]);
  });

  test("only a quiet connection skips others' membership lines", () => {
    const membership = ":x!y@z JOIN #c\r\n:srv 353 me = #c :a b\r\n:me!u@h JOIN #c\r\n";
    const loud = transport(false);
    loud.feed(membership);
    assert.equal(loud.lines.length, 3);
    const quiet = transport(true);
    quiet.feed(membership);
    assert.deepEqual(quiet.lines, [":me!u@h JOIN #c\r\n"]);
  });
});

describe("malformedReason", () => {
  const bad = [
    ":evil!u@h JOIN",
    ":evil!u@h JOIN :",
    ":evil!u@h PART",
    ":evil!u@h KICK #c",
    ":evil!u@h NICK",
    ":me!u@h NICK :",
    ":evil!u@h PRIVMSG",
    ":evil!u@h PRIVMSG #c",
    ":evil!u@h TOPIC #c",
    ":evil!u@h INVITE me",
    ":srv.example 001",
    ":srv.example 001 :",
    ":srv.example 353 me = #c",
    ":srv.example 366 me",
    ":srv.example 332 me",
    ":srv.example BATCH",
    ":srv.example CAP *",
    ": JOIN #c",
    ":srv.example JOIN #c",
    ":!@ PART #c",
    ":srv.example 005 me CHANTYPES :are supported",
    ":srv.example 005 me CHANTYPES= :are supported",
    ":srv.example 005 me CHANMODES NICKLEN=30 :are supported",
    "@a=b :x",
  ];
  const good = [
    ":bob!u@h JOIN #c",
    ":bob!u@h JOIN #c account :Real Name",
    ":bob!u@h PART #c",
    ":bob!u@h PART #c :bye",
    ":op!u@h KICK #c bob :",
    ":bob!u@h NICK bob2",
    ":bob!u@h NICK :bob2",
    ":bob!u@h QUIT",
    ":bob!u@h PRIVMSG #c :",
    ":bob!u@h PRIVMSG #c :hello there",
    "@msgid=1;time=2 :bob!u@h PRIVMSG #c hello",
    ":bob!u@h TOPIC #c :",
    "NOTICE * :*** Looking up your hostname",
    ":srv.example 001 me :Welcome",
    ":srv.example 353 me = #c :",
    ":srv.example 366 me #c :End",
    ":srv.example 005 me CHANTYPES=# PREFIX= CHANMODES=b,k,l,nt :are supported",
    ":srv.example 999 whatever",
    "PING :123",
    ":srv.example CAP * LS :",
    "",
    "   \r\n",
  ];
  for (const line of bad) test(`drops ${JSON.stringify(line)}`, () => assert.ok(malformedReason(line)));
  for (const line of good) test(`passes ${JSON.stringify(line)}`, () => assert.equal(malformedReason(`${line}\r\n`), null));
});

describe("LineFaults", () => {
  test("logs the same line once, at most N lines a minute per reason, and says how many were not logged", () => {
    const warned: Record<string, unknown>[] = [];
    let now = 0;
    const faults = new LineFaults(2, { warn: ((_m: string, meta: Record<string, unknown>) => warned.push(meta)) as never }, () => now);
    for (let i = 0; i < 5; i++) faults.report("net", "malformed", "x", ":same JOIN\r\n");
    faults.report("net", "malformed", "x", `:b JOIN ${"#".repeat(500)}\u0000\r\n`);
    faults.report("net", "malformed", "x", ":c JOIN\r\n");
    faults.report("net", "malformed", "x", ":d JOIN\r\n");
    assert.equal(warned.length, 2);
    assert.ok(String(warned[1].line).length <= 201 && String(warned[1].line).endsWith("…"));
    faults.report("net", "too_long", "x", ":f PRIVMSG #c :xxxx");
    assert.equal(warned.length, 3, "each reason has its own budget");
    now += 60_000;
    faults.report("net", "malformed", "x", ":e JOIN\r\n");
    assert.equal(warned.length, 4);
    assert.equal(warned[3].notLoggedBefore, 2);
  });
});

/** A real connection (not connected) of `owner` (null: the bot) with `nick`, for the transport's pre-parse checks. */
function connectionOf(owner: string | null, nick: string, extra: Partial<ConstructorParameters<typeof IrcConnection>[0]> = {}): IrcConnection {
  return new IrcConnection({
    networkId: "net", networkName: "Net", host: "127.0.0.1", port: 1, tls: false, rejectUnauthorized: false,
    nick, username: nick, realname: owner ?? "bot", connectTimeoutMs: 1_000, sendRate: { burst: 5, linesPerSecond: 5 },
    reconnect: false, scheduler: new ConnectScheduler("net", 10, 1, 1_000), localAddress: null, quiet: owner !== null, owner, ...extra,
  });
}

/** The lines a transport in front of `connection` lets through, of `raw`. */
function heard(connection: IrcConnection, ...raw: string[]): string[] {
  const t = new IrcTransport({ listener: connection });
  const lines: string[] = [];
  t.on("line", (line: string) => lines.push(line));
  // PRIVMSG and NOTICE lines go to the client without the library's dispatch (plainMessage.ts): heard too.
  const plain = connection.plainMessage.bind(connection);
  connection.plainMessage = (line: string) => plain(line) && lines.push(line) > 0;
  for (const line of raw) t.onSocketData(Buffer.from(line));
  return lines;
}

describe("lines of our own puppets, on a connection that is not the sender's", () => {
  // The network's nicks of our connections, casefolded → their Matrix user (null: the bot), as NetworkPool keeps them.
  const puppetNicks = new Map<string, string | null>([
    ["alice", "@alice:hs"],
    ["b{ob}", "@bob:hs"],
    ["bridgebot", null],
  ]);
  const puppetOf = (owner: string | null, nick: string) => connectionOf(owner, nick, { puppetNicks });
  const fromPuppets = [
    "@msgid=1;time=2026-01-01T00:00:00.000Z :alice!a@h PRIVMSG #c :hi\r\n",
    ":ALICE!a@h NOTICE #c :loud\r\n",
    ":B[OB]!b@h PRIVMSG #c :\u0001ACTION waves\u0001\r\n",
    "@+typing=active :alice!a@h TAGMSG #c\r\n",
  ];

  test("the bot (and any other puppet) drops a puppet's channel line before it is parsed", () => {
    assert.deepEqual(heard(puppetOf(null, "bridgebot"), ...fromPuppets), []);
    assert.deepEqual(heard(puppetOf("@carol:hs", "carol"), ...fromPuppets), []);
  });

  test("the sender's own connection still reads its line (echo confirmation)", () => {
    const alice = puppetOf("@alice:hs", "alice");
    assert.deepEqual(heard(alice, fromPuppets[0], fromPuppets[1]), [fromPuppets[0], fromPuppets[1]]);
  });

  test("real users, private lines, the bot's own lines and replayed history still pass", () => {
    const lines = [
      ":alice_!x@h PRIVMSG #c :a real user with a similar nick\r\n",
      ":alic!x@h PRIVMSG #c :another\r\n",
      ":alice!a@h PRIVMSG carol :a private line to a puppet\r\n",
      ":bridgebot!b@h NOTICE #c :the bot's own notice\r\n",
      "@batch=h1;msgid=9 :alice!a@h PRIVMSG #c :in a history replay\r\n",
      ":alice!a@h JOIN #c\r\n",
    ];
    const bot = puppetOf(null, "bridgebot");
    assert.deepEqual(heard(bot, ...lines.filter((l) => !l.includes("batch="))), lines.filter((l) => !l.includes("batch=")));
    assert.deepEqual(heard(puppetOf("@carol:hs", "carol"), lines[0], lines[2], lines[3]), [lines[0], lines[2], lines[3]]);
    // History bookkeeping (positions, msgids seen) reads every replayed line, our own included.
    assert.equal(heard(bot, lines[4]).length, 1);
  });
});

describe("copies of a channel line that another connection of ours already delivered", () => {
  const seen = new Set(["#c\u00001", "#c\u0000a:b"]);
  const checked: string[] = [];
  const channelLineSeen = (channel: string, msgid: string) => (checked.push(`${channel} ${msgid}`), seen.has(`${channel}\u0000${msgid}`));
  const readerOf = (owner: string | null, nick: string) => connectionOf(owner, nick, { quiet: false, channelLineSeen });

  test("are skipped before they are parsed; the first copy, other msgids and other lines pass", () => {
    const carol = readerOf("@carol:hs", "carol");
    const skipped = ["@msgid=1;time=2026-01-01T00:00:00.000Z :bob!b@h PRIVMSG #C :hi\r\n", "@time=x;msgid=a:b :bob!b@h NOTICE #c :n\r\n", "@msgid=1 :bob!b@h TAGMSG #c\r\n"];
    const passed = [
      "@msgid=2 :bob!b@h PRIVMSG #c :not seen yet\r\n",
      "@msgid=1 :bob!b@h PRIVMSG carol :private\r\n",
      "@msgid=1;batch=h :bob!b@h PRIVMSG #c :replayed history\r\n",
      "@msgid=a\\sb :bob!b@h PRIVMSG #c :an escaped msgid\r\n",
      ":bob!b@h PRIVMSG #c :no msgid\r\n",
      "@msgid=1 :bob!b@h JOIN #c\r\n",
    ];
    // (The transport drops the tag of a batch that is not open; the line itself passes.)
    assert.deepEqual(heard(carol, ...skipped, ...passed), passed.map((l) => l.replace(";batch=h", "")));
    assert.ok(checked.includes("#c 1"), "the target is casefolded before the broker is asked");
  });

  test("a connection's own line is never skipped: its echo confirms it", () => {
    const bob = readerOf("@bob:hs", "bob");
    (bob as unknown as { client: { user: { nick: string } } }).client.user.nick = "bob"; // as after registration
    const own = "@msgid=1 :bob!b@h PRIVMSG #c :mine\r\n";
    assert.deepEqual(heard(bob, own), [own]);
  });
});

