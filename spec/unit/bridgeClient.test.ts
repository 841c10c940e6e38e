/**
 * BridgeClient (issue 16, memory per puppet): irc-framework's state that is the same for every
 * connection is shared, and what is shared is never changed by one connection. Lines are fed
 * to the library as its socket would hand them over, without a server.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BridgeClient, internOptions } from "../../src/irc/BridgeClient.js";
import type { ClientEventSink } from "../../src/irc/clientEvents.js";

type Internals = {
  command_handler: { handlers: Record<string, unknown>; addHandler(command: string, handler: () => void): void };
  connection: { addReadBuffer(line: string): void };
  network: { options: Record<string, any>; cap: { available: Map<string, string>; enabled: string[]; isEnabled(cap: string): boolean }; supports(name: string): unknown; server: string };
};

function sink(nick: string, quiet = true): ClientEventSink & { seen: unknown[][]; nick: string; hearsAll: boolean } {
  const seen: unknown[][] = [];
  return {
    seen,
    nick,
    hearsAll: true,
    state: "connected",
    options: { quiet },
    chanTypes: "#",
    writer: { setSelf: () => undefined } as never,
    isSelf: (n) => n === nick,
    emit: (...args: unknown[]) => Boolean(seen.push(args)),
    onOwnEcho: (...args) => void seen.push(["echo", ...args]),
    onOwnMembership: (...args) => void seen.push(["own", ...args]),
    onOwnKick: () => null,
    onCloseReason: () => undefined,
    onNumeric: () => undefined,
    onClosed: () => undefined,
  };
}

function client(nick: string, quiet = true) {
  const listener = sink(nick, quiet);
  const c = new BridgeClient({ host: "127.0.0.1", port: 6667, nick, listener });
  const internals = c as unknown as Internals;
  const feed = (...lines: string[]) => lines.forEach((line) => internals.connection.addReadBuffer(line));
  return { c, internals, listener, feed };
}

const SERVER = ":irc.example.net";
const registration = (nick: string, extra = "") => [
  `${SERVER} CAP * LS :message-tags echo-message sasl=PLAIN,EXTERNAL`,
  `${SERVER} 001 ${nick} :Welcome to the network, ${nick}`,
  `${SERVER} 005 ${nick} CASEMAPPING=rfc1459 CHANTYPES=# PREFIX=(ov)@+ KICKLEN=255 NETWORK=Example${extra} :are supported by this server`,
  `${SERVER} 376 ${nick} :End of message of the day.`,
];

describe("BridgeClient: what every connection shares", () => {
  test("one command table for all, frozen: adding a handler on one connection throws and changes no other", () => {
    const a = client("alice[m]");
    const b = client("bob[m]");
    assert.equal(a.internals.command_handler.handlers, b.internals.command_handler.handlers);
    assert.ok(Object.isFrozen(a.internals.command_handler.handlers));
    assert.throws(() => a.internals.command_handler.addHandler("PRIVMSG", () => undefined), TypeError);
    assert.equal(typeof b.internals.command_handler.handlers.PRIVMSG, "function");
  });

  test("equal ISUPPORT answers share one frozen copy; a later answer to one connection changes only its own", () => {
    const a = client("alice[m]");
    const b = client("bob[m]");
    a.feed(...registration("alice[m]"));
    b.feed(...registration("bob[m]"));
    const shared = Object.getPrototypeOf(a.internals.network.options);
    assert.equal(Object.getPrototypeOf(b.internals.network.options), shared, "one copy for both");
    assert.equal(a.internals.network.supports("KICKLEN"), "255");
    assert.deepEqual(shared.PREFIX, [{ symbol: "@", mode: "o" }, { symbol: "+", mode: "v" }]);
    assert.throws(() => shared.PREFIX.push({ symbol: "%", mode: "h" }), TypeError, "nested values are frozen");
    // A reconnect of `a` to a server that answers differently.
    a.feed(`${SERVER} 005 alice[m] KICKLEN=5 CHANTYPES=#& :are supported by this server`);
    assert.equal(a.internals.network.options.KICKLEN, "5");
    assert.deepEqual(a.internals.network.options.CHANTYPES, ["#", "&"]);
    assert.equal(b.internals.network.options.KICKLEN, "255", "the other connection still reads its own answer");
    assert.deepEqual(b.internals.network.options.CHANTYPES, ["#"]);
    assert.equal(shared.KICKLEN, "255", "the shared copy is unchanged");
    a.feed(`${SERVER} 376 alice[m] :End of message of the day.`);
    assert.notEqual(Object.getPrototypeOf(a.internals.network.options), shared, "re-interned as what it now is");
    assert.equal(a.internals.network.options.KICKLEN, "5");
    assert.equal(a.internals.network.options.CASEMAPPING, "rfc1459", "what the new answer did not repeat is kept");
  });

  test("after registration: the offered caps are dropped, the enabled ones shared, and the methods still read their own connection", () => {
    const a = client("alice[m]");
    const b = client("bob[m]");
    for (const x of [a, b]) x.feed(`${SERVER} CAP * LS :message-tags echo-message`, `${SERVER} CAP * ACK :message-tags echo-message`);
    assert.equal(a.internals.network.cap.available.size, 2);
    a.feed(...registration("alice[m]").slice(1));
    b.feed(...registration("bob[m]", " STATUSMSG=@").slice(1));
    assert.equal(a.internals.network.cap.available.size, 0);
    assert.equal(a.internals.network.cap.enabled, b.internals.network.cap.enabled);
    assert.ok(a.internals.network.cap.isEnabled("echo-message"));
    // CAP DEL on one connection: only its own list changes.
    a.feed(`${SERVER} CAP alice[m] DEL :echo-message`);
    assert.equal(a.internals.network.cap.isEnabled("echo-message"), false);
    assert.equal(b.internals.network.cap.isEnabled("echo-message"), true);
    assert.equal(a.internals.network.supports("STATUSMSG"), undefined);
    assert.deepEqual(b.internals.network.supports("STATUSMSG"), ["@"]);
    assert.equal(a.internals.network.server, "irc.example.net");
  });

  test("events reach the connection through the table, and listeners of the client as before", () => {
    const a = client("alice[m]");
    a.feed(...registration("alice[m]"));
    const heard: string[] = [];
    a.c.on("privmsg", (e: { message: string }) => heard.push(e.message));
    a.feed(":bob!b@h PRIVMSG #c :hello", ":bob!b@h INVITE alice[m] :#secret", ":alice[m]!a@h JOIN #c");
    assert.deepEqual(heard, ["hello"]);
    const events = a.listener.seen.filter(([event]) => event !== "serverNotice");
    assert.equal(events[0][0], "message");
    assert.deepEqual(events.slice(1), [["invited", { channel: "#secret", by: "bob" }], ["own", "#c", true]]);
    // Not quiet (the bot): invites are not its business; topics are.
    const bot = client("BridgeBot", false);
    bot.feed(":bob!b@h INVITE BridgeBot :#secret", ":bob!b@h TOPIC #c :new topic");
    assert.deepEqual(bot.listener.seen, [["topic", { channel: "#c", topic: "new topic", nick: "bob" }]]);
  });

  test("a replayed-history batch reaches the connection as one history event, never as messages; the next batch brings only its own lines", () => {
    const a = client("alice[m]");
    a.feed(...registration("alice[m]"));
    const history = () => a.listener.seen.filter(([event]) => event === "history" || event === "message");
    a.feed(`${SERVER} BATCH +h1 chathistory #c`, "@batch=h1 :bob!b@h PRIVMSG #c :old one", "@batch=h1 :alice[m]!a@h PRIVMSG #c :my old one", `${SERVER} BATCH -h1`);
    const [first, ...rest] = history();
    assert.equal(rest.length, 0);
    assert.equal(first[0], "history");
    const batch = first[1] as { channel: string; lines: { nick: string; text: string; recovered?: boolean }[] };
    assert.equal(batch.channel, "#c");
    assert.deepEqual(batch.lines.map((l) => [l.nick, l.text, l.recovered]), [["bob", "old one", true], ["alice[m]", "my old one", true]]);
    // Our own old line in history is not an echo of a line in flight.
    assert.equal(a.listener.seen.filter(([event]) => event === "echo").length, 0);
    a.listener.seen.length = 0;
    a.feed(`${SERVER} BATCH +h2 chathistory #d`, "@batch=h2 :carol!c@h PRIVMSG #d :older", `${SERVER} BATCH -h2`, ":bob!b@h PRIVMSG #c :live");
    const [second, live] = history();
    assert.deepEqual([second[0], (second[1] as { channel: string }).channel, (second[1] as { lines: { text: string }[] }).lines.map((l) => l.text)], ["history", "#d", ["older"]]);
    assert.deepEqual([live[0], (live[1] as { text: string }).text], ["message", "live"]);
  });

  test("internOptions: equal content, one prototype; writes shadow it", () => {
    const x = internOptions({ A: "1", L: ["a"] });
    const y = internOptions({ L: ["a"], A: "1" });
    assert.equal(Object.getPrototypeOf(x), Object.getPrototypeOf(y));
    x.A = "2";
    assert.equal(y.A, "1");
  });
});
