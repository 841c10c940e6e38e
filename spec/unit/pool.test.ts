import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { describe, test } from "node:test";
import { ChannelBroker } from "../../src/irc/ChannelBroker.js";
import { classifyCloseReason } from "../../src/irc/ConnectScheduler.js";
import { identReply } from "../../src/irc/IdentServer.js";
import type { IrcConnection, IrcMessage } from "../../src/irc/IrcConnection.js";
import { allocateIpv6, formatIpv6, parseIpv6 } from "../../src/irc/ipv6.js";
import { uniqueUsername, usernameFor } from "../../src/irc/usernames.js";

/** Just enough of a connection for the broker: a state and the channels it is in. */
class FakeConnection extends EventEmitter {
  state = "connected";
  constructor(readonly name: string) {
    super();
  }
  isJoined(): boolean {
    return this.state === "connected";
  }
}

const line = (text: string, msgid?: string): IrcMessage => ({
  kind: "privmsg",
  nick: "bob",
  ident: "bob",
  hostname: "h",
  target: "#c",
  text,
  tags: msgid ? { msgid } : {},
  receivedAt: Date.now(),
});

describe("ChannelBroker", () => {
  test("with msgids, the first copy from any connection wins", () => {
    const [a, b] = [new FakeConnection("a"), new FakeConnection("b")];
    const broker = new ChannelBroker("net", () => [a, b] as unknown as IrcConnection[]);
    const out: string[] = [];
    broker.on("line", (m) => out.push(m.text));
    for (const [conn, text, id] of [[b, "one", "1"], [a, "one", "1"], [a, "two", "2"], [b, "two", "2"]] as const) {
      broker.onLine(conn as unknown as IrcConnection, "#c", line(text, id));
    }
    assert.deepEqual(out, ["one", "two"]);
  });

  test("without msgids, only the nominee delivers, and a new nominee replays what was missed", () => {
    const [bot, p1, p2] = [new FakeConnection("bot"), new FakeConnection("p1"), new FakeConnection("p2")];
    const all = [bot, p1, p2];
    const broker = new ChannelBroker("net", () => all.filter((c) => c.state === "connected") as unknown as IrcConnection[]);
    const out: string[] = [];
    broker.on("line", (m) => out.push(m.text));
    const hear = (conns: FakeConnection[], text: string) => {
      const msg = line(text);
      for (const c of conns) broker.onLine(c as unknown as IrcConnection, "#c", { ...msg });
    };
    hear([bot, p1, p2], "a");
    hear([p1, p2], "b"); // the bot's link is dead: it never sees b and c
    hear([p1, p2], "c");
    assert.deepEqual(out, ["a"]);
    bot.state = "disconnected";
    broker.onConnectionLost(bot as unknown as IrcConnection);
    assert.deepEqual(out, ["a", "b", "c"]);
    hear([p2, p1], "d");
    assert.deepEqual(out, ["a", "b", "c", "d"]);
  });
});

describe("close reasons", () => {
  test("bans and bad passwords are final, connection limits mean slow down", () => {
    assert.equal(classifyCloseReason("Closing link: (x@y) [K-Lined: spam]"), "fatal");
    assert.equal(classifyCloseReason("You are banned from this server"), "fatal");
    assert.equal(classifyCloseReason("Password mismatch"), "fatal");
    assert.equal(classifyCloseReason("Closing link: (x@y) [No more connections allowed from your host via this connect class (local)]"), "throttled");
    assert.equal(classifyCloseReason("Too many connections from your IP"), "throttled");
    assert.equal(classifyCloseReason("Ping timeout: 120 seconds"), "transient");
    assert.equal(classifyCloseReason("Server shutting down"), "transient");
  });
});

describe("ident", () => {
  test("answers RFC 1413 queries by port pair", () => {
    const lookup = (local: number, remote: number) => (local === 5000 && remote === 6667 ? "alice" : null);
    assert.equal(identReply("5000, 6667", lookup), "5000 , 6667 : USERID : UNIX : alice");
    assert.equal(identReply(" 5001 , 6667 ", lookup), "5001 , 6667 : ERROR : NO-USER");
    assert.equal(identReply("99999 , 6667", lookup), "99999 , 6667 : ERROR : INVALID-PORT");
    assert.match(identReply("GET / HTTP/1.0", lookup), /: ERROR : INVALID-PORT$/);
  });
});

describe("usernames", () => {
  test("stable, at most 10 characters, unique with a suffix", () => {
    assert.equal(usernameFor("@Alice.Smith:example.org"), "alicesmith");
    assert.equal(usernameFor("@a-very-long-localpart:example.org"), "averylongl");
    assert.equal(usernameFor("@___:example.org"), "matrix");
    assert.equal(uniqueUsername("alice", new Set()), "alice");
    assert.equal(uniqueUsername("alice", new Set(["alice", "alice2"])), "alice3");
    assert.equal(uniqueUsername("averylongl", new Set(["averylongl"])), "averylong2");
  });
});

describe("IPv6 source addresses", () => {
  test("parse and format round-trip, compressed per RFC 5952", () => {
    for (const a of ["2001:db8::1", "::1", "2001:db8:1:2:3:4:5:6", "fe80::", "2001:0:0:1::1"]) assert.equal(formatIpv6(parseIpv6(a)), a);
    assert.equal(formatIpv6(parseIpv6("2001:0db8:0000:0000:0000:0000:0000:0001")), "2001:db8::1");
  });

  test("each user gets a stable address inside the prefix, distinct from those taken", () => {
    const a = allocateIpv6("2001:db8:1234::/64", "@alice:example.org", new Set());
    assert.equal(allocateIpv6("2001:db8:1234::/64", "@alice:example.org", new Set()), a);
    assert.ok(a.startsWith("2001:db8:1234:0:") || a.startsWith("2001:db8:1234::"), a);
    const b = allocateIpv6("2001:db8:1234::/64", "@alice:example.org", new Set([a]));
    assert.notEqual(a, b);
    const small = new Set<string>();
    for (let i = 0; i < 3; i++) small.add(allocateIpv6("2001:db8::/126", `@u${i}:x`, small));
    assert.equal(small.size, 3);
    assert.throws(() => allocateIpv6("2001:db8::/126", "@u4:x", small), /no free address/);
  });
});

describe("quiet connections", () => {
  test("drop listings and others' membership lines, keep their messages and our own changes", async () => {
    const { isAboutOthers } = await import("../../src/irc/lineFilter.js");
    const me = "alice[m]";
    assert.ok(isAboutOthers("@time=x;msgid=1 :bob!b@h JOIN #c * :Bob\r\n", me));
    assert.ok(isAboutOthers(":bob!b@h QUIT :bye", me));
    assert.ok(isAboutOthers(":irc.test 353 alice[m] = #c :a b c", me));
    assert.ok(isAboutOthers(":irc.test 366 alice[m] #c :End of /NAMES list.", me));
    assert.ok(!isAboutOthers(":alice[m]!a@h JOIN #c * :Alice", me));
    assert.ok(!isAboutOthers("@msgid=2 :bob!b@h PRIVMSG #c :JOIN me", me));
    assert.ok(!isAboutOthers(":bob!b@h KICK #c alice[m] :out", me));
    assert.ok(!isAboutOthers("PING :irc.test", me));
    assert.ok(!isAboutOthers(":irc.test 001 alice[m] :Welcome", me));
  });
});
