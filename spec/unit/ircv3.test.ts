/**
 * IRCv3 interactions (issue 13) as pure logic: TAGMSG and REDACT lines, the client tags read
 * and written, typing throttling, and both directions of REDACT (InspIRCd 3, the test IRCd,
 * does not offer draft/message-redaction, so REDACT is only tested here).
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { describe, test } from "node:test";
import type { Client } from "irc-framework";
import { parseConfig } from "../../src/config/load.js";
import { IrcConnection, type IrcRedaction } from "../../src/irc/IrcConnection.js";
import { IrcWriter, UnsafeLineError } from "../../src/irc/IrcWriter.js";
import { listenForTagsAndRedactions, REDACTION_CAP } from "../../src/irc/ircv3Events.js";
import { isAboutOthers } from "../../src/irc/lineFilter.js";
import { ConnectScheduler } from "../../src/irc/ConnectScheduler.js";
import { SendPacer } from "../../src/irc/SendPacer.js";
import { annotationOf, parseReactionLinkId, reactionLinkId, reactionTags, readReaction, readTyping, redactedEventId, type TypingState } from "../../src/bridge/ircv3Tags.js";
import { KeyedQueue } from "../../src/bridge/KeyedQueue.js";
import { LineRedactions, MatrixRedactions, type RedactionPool } from "../../src/bridge/Redactions.js";
import { TypingThrottle, type TypingClock } from "../../src/bridge/TypingThrottle.js";
import { Typing } from "../../src/bridge/Typing.js";
import { waitFor } from "../harness/wait.js";
import type { NetworkPool } from "../../src/irc/NetworkPool.js";
import type { MessageLink } from "../../src/store/DataStore.js";

const fakeClient = (written: string[]) => ({ raw: (line: string) => written.push(line), user: { nick: "alice" }, network: { options: {} }, connection: { connected: true, transport: { writeLine: (line: string) => written.push(line) } } }) as unknown as Client;

describe("TAGMSG and REDACT lines (the one writer)", () => {
  test("a reaction is one TAGMSG with the key and both reply tags, escaped", async () => {
    const written: string[] = [];
    const writer = new IrcWriter(fakeClient(written), new SendPacer(10, 1000));
    await writer.tagmsg("#c", reactionTags("m1", "👍"));
    await writer.tagmsg("#c", reactionTags("m1", "so good; yes", true));
    await writer.tagmsg("#c", { "+typing": "active" });
    assert.deepEqual(written, [
      "@+draft/react=👍;+draft/reply=m1;+reply=m1 TAGMSG #c",
      "@+draft/unreact=so\\sgood\\:\\syes;+draft/reply=m1;+reply=m1 TAGMSG #c",
      "@+typing=active TAGMSG #c",
    ]);
  });

  test("a TAGMSG without tags, with tags over 4094 bytes, or to an unsafe target is refused and nothing written", async () => {
    const written: string[] = [];
    const writer = new IrcWriter(fakeClient(written), new SendPacer(10, 1000));
    await assert.rejects(writer.tagmsg("#c", {}), UnsafeLineError);
    await assert.rejects(writer.tagmsg("#c", reactionTags("m1", "x".repeat(4100))), UnsafeLineError);
    await assert.rejects(writer.tagmsg("#c\r\nQUIT", { "+typing": "active" }), UnsafeLineError);
    assert.deepEqual(written, []);
  });

  test("REDACT names the target and msgid; the reason is flattened free text; an unsafe msgid is refused", async () => {
    const written: string[] = [];
    const writer = new IrcWriter(fakeClient(written), new SendPacer(10, 1000));
    await writer.redact("#c", "m1", "typo\r\nQUIT :x");
    await writer.redact("#c", "m2");
    await assert.rejects(writer.redact("#c", "m 3"), UnsafeLineError);
    await assert.rejects(writer.redact("#c", ":m3"), UnsafeLineError);
    assert.deepEqual(written, ["REDACT #c m1 :typo QUIT :x", "REDACT #c m2"]);
  });
});

describe("capabilities of a connection", () => {
  const connection = (caps: string[]) => {
    const c = new IrcConnection({
      networkId: "net", networkName: "Net", host: "127.0.0.1", port: 1, tls: false, rejectUnauthorized: true, nick: "alice", username: "alice", realname: "a",
      connectTimeoutMs: 1000, sendRate: { burst: 10, linesPerSecond: 10 }, reconnect: false, scheduler: new ConnectScheduler("net", 10, 10, 1000), localAddress: null, quiet: true, owner: "@alice:x",
    });
    const client = (c as unknown as { client: Client & { request_extra_caps: string[] } }).client;
    const written: string[] = [];
    client.raw = (line: string) => void written.push(line);
    (client as unknown as { connection: unknown }).connection = { connected: true, transport: { writeLine: (line: string) => void written.push(line) } };
    client.network.cap.isEnabled = (cap: string) => caps.includes(cap);
    c.state = "connected";
    return { c, client, written };
  };

  test("draft/message-redaction is asked for (irc-framework requests it only where offered)", () => {
    assert.ok(connection([]).client.request_extra_caps.includes(REDACTION_CAP));
  });

  test("without message-tags a TAGMSG is not sent (no text instead); without draft/message-redaction no REDACT", async () => {
    const { c, written } = connection(["echo-message"]);
    assert.equal(await c.sendTags("#c", reactionTags("m1", "👍")), false);
    assert.equal(await c.redact("#c", "m1", "oops"), false);
    assert.deepEqual(written, []);
  });

  test("with them, both go out", async () => {
    const { c, written } = connection(["message-tags", REDACTION_CAP]);
    assert.equal(await c.sendTags("#c", { "+typing": "done" }), true);
    assert.equal(await c.redact("#c", "m1", "oops"), true);
    assert.deepEqual(written, ["@+typing=done TAGMSG #c", "REDACT #c m1 :oops"]);
  });

  test("puppets (quiet connections) skip others' TAGMSG and REDACT before parsing: the bot hears them once", () => {
    assert.equal(isAboutOthers("@time=x;+typing=active :bob!b@h TAGMSG :#c", "alice[m]"), true);
    assert.equal(isAboutOthers(":bob!b@h REDACT #c m1 :oops", "alice[m]"), true);
    assert.equal(isAboutOthers("@+typing=active :alice[m]!a@h TAGMSG #c", "alice[m]"), false);
  });

  test("TAGMSG and REDACT from others are reported, checked; our own (echoes) are not", () => {
    const client = new EventEmitter();
    const seen: unknown[] = [];
    const listener = { isSelf: (n: string) => n === "me", emit: (event: string, arg: unknown) => seen.push([event, arg]) };
    listenForTagsAndRedactions(client as unknown as Client, listener as never);
    client.emit("tagmsg", { nick: "bob", target: "#c", tags: { "+typing": "active" } });
    client.emit("tagmsg", { nick: "me", target: "#c", tags: { "+typing": "active" } });
    client.emit("tagmsg", { nick: "", target: "#c", tags: {} });
    client.emit("unknown command", { command: "REDACT", nick: "bob", params: ["#c", "m1", "oops"] });
    client.emit("unknown command", { command: "REDACT", nick: "bob", params: ["#c"] });
    client.emit("unknown command", { command: "REDACT", nick: "me", params: ["#c", "m2"] });
    client.emit("unknown command", { command: "FOO", nick: "bob", params: ["#c", "m2"] });
    assert.deepEqual(seen, [
      ["tagmsg", { nick: "bob", target: "#c", tags: { "+typing": "active" } }],
      ["redact", { nick: "bob", target: "#c", msgid: "m1", reason: "oops" }],
    ]);
  });
});

describe("IRCv3 client tags read", () => {
  test("reactions name a line by +reply or +draft/reply; without one they are nothing", () => {
    assert.deepEqual(readReaction({ "+draft/react": "🎉", "+draft/reply": "m1" }), { key: "🎉", msgid: "m1", undo: false });
    assert.deepEqual(readReaction({ "+draft/unreact": "🎉", "+reply": "m2" }), { key: "🎉", msgid: "m2", undo: true });
    assert.equal(readReaction({ "+draft/react": "🎉" }), null);
    assert.equal(readReaction({ "+reply": "m1" }), null);
    assert.equal(readTyping({ "+typing": "paused" }), "paused");
    assert.equal(readTyping({ "+typing": "bogus" }), null);
  });

  test("a reaction's link name round-trips and never parses from a real msgid", () => {
    const id = reactionLinkId("@a:x", "m;1", "a \"key\"");
    assert.deepEqual(parseReactionLinkId(id), { who: "@a:x", msgid: "m;1", key: "a \"key\"" });
    assert.equal(parseReactionLinkId("318~1795479917~2"), null);
    assert.equal(parseReactionLinkId("react:not json"), null);
  });

  test("annotations and redacted event IDs are read defensively", () => {
    assert.deepEqual(annotationOf({ content: { "m.relates_to": { rel_type: "m.annotation", event_id: "$e", key: "k" } } }), { eventId: "$e", key: "k" });
    assert.equal(annotationOf({ content: { "m.relates_to": { rel_type: "m.replace", event_id: "$e", key: "k" } } }), null);
    assert.equal(annotationOf({ content: {} }), null);
    assert.equal(redactedEventId({ content: { redacts: "$v11" }, redacts: "$old" }), "$v11");
    assert.equal(redactedEventId({ content: {}, redacts: "$old" }), "$old");
    assert.equal(redactedEventId({ content: {} }), null);
  });
});

/** A clock whose timers run when the test moves time on. */
function fakeClock(): TypingClock & { advance(ms: number): void } {
  let now = 1_000_000;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout: (fn, ms) => {
      timers.set(++seq, { at: now + ms, fn });
      return seq;
    },
    clearTimeout: (h) => void timers.delete(h as number),
    advance(ms: number) {
      const end = now + ms;
      for (;;) {
        const next = [...timers].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (!next) break;
        timers.delete(next[0]);
        now = next[1].at;
        next[1].fn();
      }
      now = end;
    },
  };
}

describe("typing throttle (at most one active per 3 s per target)", () => {
  const make = (maxActiveMs = 60_000) => {
    const clock = fakeClock();
    const sent: [string, TypingState, number][] = [];
    const throttle = new TypingThrottle<string>((target, state) => sent.push([target, state, clock.now()]), 3_000, maxActiveMs, clock);
    return { clock, sent, throttle };
  };

  test("active is sent at once, repeated every 3 s while typing, and done stops it", () => {
    const { clock, sent, throttle } = make();
    const t0 = clock.now();
    throttle.set("alice#c", "active", "#c");
    throttle.set("alice#c", "active", "#c");
    clock.advance(1_000);
    throttle.set("alice#c", "active", "#c");
    assert.deepEqual(sent, [["#c", "active", t0]]);
    clock.advance(8_500);
    assert.deepEqual(sent.map(([, s, at]) => [s, at - t0]), [["active", 0], ["active", 3_000], ["active", 6_000], ["active", 9_000]]);
    throttle.set("alice#c", "done", "#c");
    clock.advance(10_000);
    assert.deepEqual(sent.at(-1), ["#c", "done", t0 + 9_500]);
    assert.equal(sent.length, 5);
    assert.equal(throttle.size, 0);
  });

  test("targets are throttled apart; done for a target never told anything sends nothing", () => {
    const { sent, throttle } = make();
    throttle.set("a", "done", "#a");
    throttle.set("a", "active", "#a");
    throttle.set("b", "active", "#b");
    assert.deepEqual(sent.map(([t, s]) => [t, s]), [["#a", "active"], ["#b", "active"]]);
  });

  test("active after paused within 3 s of the last active waits for the rest of the interval", () => {
    const { clock, sent, throttle } = make();
    const t0 = clock.now();
    throttle.set("k", "active", "#c");
    clock.advance(500);
    throttle.set("k", "paused", "#c");
    clock.advance(500);
    throttle.set("k", "active", "#c");
    assert.deepEqual(sent.map(([, s, at]) => [s, at - t0]), [["active", 0], ["paused", 500]]);
    clock.advance(2_000);
    assert.deepEqual(sent.map(([, s, at]) => [s, at - t0]), [["active", 0], ["paused", 500], ["active", 3_000]]);
  });

  test("a stop that never comes: done after maxActiveMs, and no more repeats", () => {
    const { clock, sent, throttle } = make(10_000);
    throttle.set("k", "active", "#c");
    clock.advance(60_000);
    assert.equal(sent.at(-1)?.[1], "done");
    assert.ok(sent.length <= 6, `${sent.length} lines`);
    assert.equal(throttle.size, 0);
  });
});

describe("redactions both ways", () => {
  const config = parseConfig({
    homeserver: { url: "http://localhost:8008", domain: "example.org" },
    networks: { net: { name: "Net", address: "irc.example.org", botNick: "Bot", ghostUserTemplate: "net_$NICK", aliasTemplate: "net_$CHANNEL" } },
  });
  const ROOM = "!room:example.org";

  const setup = (links: MessageLink[], options: { connected?: boolean; cap?: boolean; ghostFails?: boolean } = {}) => {
    const calls: string[] = [];
    const connection = {
      redact: async (target: string, msgid: string, reason?: string) => {
        if (options.cap === false) return false;
        calls.push(`REDACT ${target} ${msgid} ${reason ?? "-"}`);
        return true;
      },
    };
    const pool = Object.assign(new EventEmitter(), {
      networkId: "net",
      connectionOf: (userId: string) => (options.connected === false ? null : userId === "@alice:example.org" ? connection : null),
      isOwnNick: (nick: string) => nick === "alice[m]",
      bot: { casefold: (s: string) => s.toLowerCase(), caseMapping: "ascii" },
    }) as unknown as RedactionPool & EventEmitter;
    const intent = (who: string, fails: boolean) => ({
      matrixClient: {
        redactEvent: async (roomId: string, eventId: string, reason?: string) => {
          if (fails) throw new Error("M_FORBIDDEN");
          calls.push(`${who} redacts ${eventId} in ${roomId} ${reason ?? "-"}`);
          return "$r";
        },
      },
    });
    const redactions = new LineRedactions(
      config,
      { channelsOf: (roomId: string) => (roomId === ROOM ? [{ networkId: "net", channel: "#c", channelName: "#C" }] : []), roomsOf: (_n: string, channel: string) => (channel === "#c" ? [ROOM] : []) },
      new Map([["net", pool]]),
      { byEvent: async (e: string) => links.find((l) => l.eventId === e) ?? null, byMsgid: async (n: string, m: string) => links.find((l) => l.networkId === n && l.msgid === m) ?? null },
      { intentFor: async (_n: string, _c: unknown, nick: string) => intent(`ghost ${nick}`, options.ghostFails ?? false) } as never,
      new KeyedQueue(),
      () => intent("bot", false) as never,
      async (roomId: string, eventId: string) => void calls.push(`media links of ${eventId} in ${roomId} die`),
    );
    redactions.attach(pool);
    return { calls, pool, redactions };
  };
  const line = (eventId: string, msgid: string, roomId = ROOM): MessageLink => ({ roomId, eventId, networkId: "net", msgid, at: 0 });
  const ircRedact = (nick: string, msgid: string, reason = ""): IrcRedaction => ({ nick, target: "#C", msgid, reason });

  test("a Matrix redaction of a bridged line is REDACT from the redacting user's open connection, with the reason", async () => {
    const { calls, redactions } = setup([line("$e1", "m1")]);
    await redactions.onMatrixRedaction({ roomId: ROOM, redacts: "$e1", sender: "@alice:example.org", reason: "typo" });
    await redactions.onMatrixRedaction({ roomId: ROOM, redacts: "$unknown", sender: "@alice:example.org", reason: null });
    assert.deepEqual(calls, ["REDACT #C m1 typo"]);
  });

  test("nothing is sent for reactions' links, other rooms' links, users not connected, or a server without the capability", async () => {
    for (const [links, options, sender] of [
      [[line("$e1", reactionLinkId("@alice:example.org", "m1", "👍"))], {}, "@alice:example.org"],
      [[line("$e1", "m1", "!other:example.org")], {}, "@alice:example.org"],
      [[line("$e1", "m1")], { connected: false }, "@alice:example.org"],
      [[line("$e1", "m1")], {}, "@dave:example.org"],
      [[line("$e1", "m1")], { cap: false }, "@alice:example.org"],
    ] as const) {
      const { calls, redactions } = setup([...links], options);
      await redactions.onMatrixRedaction({ roomId: ROOM, redacts: "$e1", sender, reason: null });
      assert.deepEqual(calls, [], JSON.stringify({ links, options, sender }));
    }
  });

  test("an IRC REDACT of a bridged line redacts its event by the nick's ghost, else by the bot; our own and unknown ones do nothing", async () => {
    const { calls, redactions, pool } = setup([line("$e1", "m1"), line("$e2", "m2")]);
    await redactions.onIrcRedact(pool, ircRedact("bob", "m1", "oops"));
    await redactions.onIrcRedact(pool, ircRedact("alice[m]", "m2"));
    await redactions.onIrcRedact(pool, ircRedact("bob", "unknown"));
    await redactions.onIrcRedact(pool, { ...ircRedact("bob", "m2"), target: "#elsewhere" });
    // The bridge's own redaction comes back from a bridge user (ignored): media links are told here.
    assert.deepEqual(calls, ["ghost bob redacts $e1 in !room:example.org oops", "media links of $e1 in !room:example.org die"]);
    // A server that takes any msgid cannot make the bridge take back a Matrix user's reaction.
    const reacted = setup([line("$r1", reactionLinkId("@alice:example.org", "m1", "👍"))]);
    await reacted.redactions.onIrcRedact(reacted.pool, ircRedact("bob", reactionLinkId("@alice:example.org", "m1", "👍")));
    assert.deepEqual(reacted.calls, []);
    const fallback = setup([line("$e1", "m1")], { ghostFails: true });
    await fallback.redactions.onIrcRedact(fallback.pool, ircRedact("op", "m1"));
    assert.deepEqual(fallback.calls, ["bot redacts $e1 in !room:example.org -", "media links of $e1 in !room:example.org die"]);
  });

  test("the Matrix redaction list: every handler runs, one failing does not stop the others", async () => {
    const seen: string[] = [];
    const list = new MatrixRedactions();
    list.add("fails", async () => {
      throw new Error("boom");
    });
    list.add("media", async (r) => void seen.push(`${r.redacts} ${r.reason}`));
    await list.onRedaction({ type: "m.room.redaction", room_id: ROOM, sender: "@a:x", content: { redacts: "$e", reason: "spam" } });
    await list.onRedaction({ type: "m.room.redaction", room_id: ROOM, sender: "@a:x", content: {} });
    assert.deepEqual(seen, ["$e spam"]);
  });
});

describe("typing both ways (the bridge part)", () => {
  const config = parseConfig({
    homeserver: { url: "http://localhost:8008", domain: "example.org" },
    networks: { net: { name: "Net", address: "irc.example.org", botNick: "Bot", ghostUserTemplate: "net_$NICK", aliasTemplate: "net_$CHANNEL" } },
  });
  const ROOM = "!room:example.org";
  const setup = (options: { limit?: { burst: number; perMinute: number }; now?: () => number; inRoom?: (userId: string) => boolean } = {}) => {
    const toIrc: string[] = [];
    const toMatrix: string[] = [];
    const joins: string[] = [];
    const connection = { isJoined: (c: string) => c === "#C", sendTags: async (target: string, tags: Record<string, string>) => toIrc.push(`${target} ${tags["+typing"]}`) > 0 };
    const pool = Object.assign(new EventEmitter(), {
      networkId: "net",
      connectionOf: (userId: string) => (userId === "@alice:example.org" ? connection : null),
      isOwnNick: (nick: string) => nick === "alice[m]",
      bot: { casefold: (s: string) => s.toLowerCase(), caseMapping: "ascii" },
    });
    const links = { channelsOf: (roomId: string) => (roomId === ROOM ? [{ networkId: "net", channel: "#c", channelName: "#C" }] : []), roomsOf: (_n: string, c: string) => (c === "#c" ? [ROOM] : []) };
    const ghosts = {
      userIdFor: (_n: unknown, nick: string) => `@net_${nick}:example.org`,
      isKnownIn: (_roomId: string, userId: string) => options.inRoom?.(userId) ?? true,
      intentFor: async (_id: string, _n: unknown, nick: string) => ({
        join: async (roomId: string) => void joins.push(`${nick} ${roomId}`),
        matrixClient: { setTyping: async (_r: string, typing: boolean, timeout?: number) => void toMatrix.push(`${nick} ${typing} ${timeout ?? "-"}`) },
      }),
    };
    const typing = new Typing(config, links as never, new Map([["net", pool as unknown as NetworkPool]]), ghosts as never, (u) => !u.startsWith("@net_"), options.limit, options.now);
    typing.attach(pool as unknown as NetworkPool);
    return { typing, pool, toIrc, toMatrix, joins };
  };
  const settle = () => new Promise((r) => setImmediate(r));

  test("m.typing lists are diffed per room: starts and stops of bridged users with a puppet in the channel", async () => {
    const { typing, toIrc } = setup();
    const event = (ids: string[], roomId = ROOM) => ({ type: "m.typing", room_id: roomId, content: { user_ids: ids } });
    typing.onEphemeral(event(["@alice:example.org", "@net_bob:example.org", "@dave:example.org"]));
    typing.onEphemeral(event(["@alice:example.org", "@dave:example.org"]));
    typing.onEphemeral(event(["@alice:example.org"], "!unlinked:example.org"));
    typing.onEphemeral({ type: "m.receipt", room_id: ROOM, content: {} });
    await settle();
    assert.deepEqual(toIrc, ["#C active"], "ghosts are not users; dave has no puppet; no repeat for the same list");
    typing.onEphemeral(event([]));
    await settle();
    assert.deepEqual(toIrc, ["#C active", "#C done"]);
    typing.stop();
  });

  test("IRC typing: one update per ghost per room per 3 s whatever the state, with its expiry; done and a line stop it once", async () => {
    const { pool, toMatrix } = setup();
    for (let i = 0; i < 5; i++) pool.emit("tagmsg", { nick: "bob", target: "#C", tags: { "+typing": "active" } });
    pool.emit("tagmsg", { nick: "alice[m]", target: "#C", tags: { "+typing": "active" } });
    pool.emit("tagmsg", { nick: "carol", target: "#elsewhere", tags: { "+typing": "active" } });
    pool.emit("tagmsg", { nick: "bob", target: "#C", tags: { "+typing": "paused" } });
    pool.emit("channelLine", { nick: "carol", target: "#C", text: "hi" });
    pool.emit("channelLine", { nick: "bob", target: "#C", text: "there" });
    pool.emit("tagmsg", { nick: "bob", target: "#C", tags: { "+typing": "done" } });
    await settle();
    await settle();
    assert.deepEqual(toMatrix, ["bob true 6000", "bob false -"], "paused within 3 s of active waits (and the done cancels it)");
  });

  test("a change within the 3 s window is sent when it opens, the latest one only", async () => {
    let now = 1_000_000;
    const { pool, toMatrix, typing } = setup({ now: () => now });
    pool.emit("tagmsg", { nick: "bob", target: "#C", tags: { "+typing": "active" } });
    pool.emit("tagmsg", { nick: "bob", target: "#C", tags: { "+typing": "done" } });
    pool.emit("tagmsg", { nick: "bob", target: "#C", tags: { "+typing": "active" } });
    pool.emit("tagmsg", { nick: "bob", target: "#C", tags: { "+typing": "paused" } });
    await settle();
    assert.deepEqual(toMatrix, ["bob true 6000", "bob false -"]);
    now += 3_000; // the deferred send runs on a real timer of up to 3 s
    await waitFor("the deferred paused", () => toMatrix.length === 3, 10_000, 50);
    assert.deepEqual(toMatrix, ["bob true 6000", "bob false -", "bob true 30000"]);
    typing.stop();
  });

  test("alternating active/paused/done cannot flood: at most one true and one done per 3 s; never a join", async () => {
    let now = 1_000_000;
    const { pool, toMatrix, joins, typing } = setup({ now: () => now });
    const say = (state: string) => pool.emit("tagmsg", { nick: "bob", target: "#C", tags: { "+typing": state } });
    for (let round = 0; round < 10; round++) {
      for (const state of ["active", "paused", "done", "active", "done"]) say(state);
      now += 1_000;
    }
    await settle();
    await settle();
    // 10 s of flood: a true and its done every 3 s at most.
    assert.ok(toMatrix.length <= 8, `${toMatrix.length} updates: ${toMatrix.join(", ")}`);
    assert.deepEqual(toMatrix.slice(0, 2), ["bob true 6000", "bob false -"]);
    assert.deepEqual(joins, [], "typing never joins a ghost to a room");
    typing.stop();
  });

  test("ghosts not known in the room show nothing; a network's budget bounds many ghosts", async () => {
    const { pool, toMatrix } = setup({ inRoom: (u) => u !== "@net_stranger:example.org", limit: { burst: 3, perMinute: 1 } });
    pool.emit("tagmsg", { nick: "stranger", target: "#C", tags: { "+typing": "active" } });
    for (let i = 0; i < 10; i++) pool.emit("tagmsg", { nick: `n${i}`, target: "#C", tags: { "+typing": "active" } });
    await settle();
    await settle();
    assert.deepEqual(toMatrix, ["n0 true 6000", "n1 true 6000", "n2 true 6000"]);
  });
});
