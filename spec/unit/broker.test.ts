/**
 * The ChannelBroker's hand-over without msgids: fake connections (a state and the channels they
 * are in) hear copies of each line in whatever interleaving a test chooses, as sockets would.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ChannelBroker } from "../../src/irc/ChannelBroker.js";
import type { IrcConnection, IrcMessage } from "../../src/irc/IrcConnection.js";

class FakeConnection {
  state = "connected";
  readonly channels = new Set<string>(["#c"]);
  constructor(readonly name: string) {}
  isJoined(channel: string): boolean {
    return this.state === "connected" && this.channels.has(channel);
  }
}

/** A channel, its connections (best candidate first), and what reached Matrix. */
function setup(names: string[]) {
  const conns = names.map((n) => new FakeConnection(n));
  const broker = new ChannelBroker("net", (channel) => conns.filter((c) => c.isJoined(channel)) as unknown as IrcConnection[]);
  const out: string[] = [];
  broker.on("line", (m) => out.push(m.text));
  // People type: a second between lines. Copies of one line carry the same time, as sockets
  // on one host read them within milliseconds of each other.
  let clock = 1_000_000;
  /** One line said in the channel; each listed connection hears its own copy, in that order. */
  const hear = (who: FakeConnection[], text: string, msgid?: string) => {
    clock += 1_000;
    for (const c of who) {
      const msg: IrcMessage = { kind: "privmsg", nick: "bob", ident: "bob", hostname: "h", target: "#c", text, tags: msgid ? { msgid } : {}, receivedAt: clock };
      broker.onLine(c as unknown as IrcConnection, "#c", msg);
    }
  };
  /** Several lines, each heard by the same connections. */
  const hearAll = (who: FakeConnection[], texts: string[]) => texts.forEach((t) => hear(who, t));
  /** A connection drops, and the pool says so. */
  const drop = (c: FakeConnection) => {
    c.state = "disconnected";
    broker.onConnectionLost(c as unknown as IrcConnection);
  };
  const later = (ms: number) => (clock += ms);
  return { conns, broker, out, hear, hearAll, drop, later };
}

describe("ChannelBroker hand-over (no msgids)", () => {
  test("a connection that joined after the nomination keeps a history, and the hand-over to it replays what the nominee missed", () => {
    const { conns, out, hearAll, drop } = setup(["bot", "late"]);
    const [bot, late] = conns;
    late.channels.clear(); // not in the channel yet
    hearAll([bot], ["a", "b"]);
    late.channels.add("#c"); // joins now
    hearAll([bot, late], ["c", "d"]);
    hearAll([late], ["e", "f"]); // the bot's link is dead: it never sees these
    drop(bot);
    hearAll([late], ["g"]);
    assert.deepEqual(out, ["a", "b", "c", "d", "e", "f", "g"]);
  });

  test("a connection that joins while the nominee is silently dead becomes a backup and replays what it read", () => {
    const { conns, out, hearAll, drop } = setup(["bot", "p1", "late"]);
    const [bot, p1, late] = conns;
    late.channels.clear();
    hearAll([bot, p1], ["a", "b"]);
    p1.channels.delete("#c"); // the only backup leaves
    hearAll([bot], ["c"]);
    hearAll([], ["said while nobody but the dead bot was there"]);
    late.channels.add("#c");
    hearAll([late], ["d", "e"]); // the bot's link is dead
    drop(bot);
    hearAll([late], ["f"]);
    assert.deepEqual(out, ["a", "b", "c", "d", "e", "f"]);
  });

  test("lol, x, lol: the hand-over resumes after the right lol, losing and doubling nothing", () => {
    const { conns, out, hear, hearAll, drop } = setup(["bot", "p"]);
    const [bot, p] = conns;
    hear([bot, p], "lol");
    hearAll([p], ["x", "lol"]); // the bot is silently dead
    drop(bot);
    hearAll([p], ["lol", "x"]);
    assert.deepEqual(out, ["lol", "x", "lol", "lol", "x"]);
  });

  test("lol, x, lol all delivered before the hand-over: nothing is replayed twice", () => {
    const { conns, out, hearAll, drop } = setup(["bot", "p"]);
    const [bot, p] = conns;
    hearAll([bot, p], ["lol", "x", "lol"]);
    drop(bot);
    hearAll([p], ["lol"]);
    assert.deepEqual(out, ["lol", "x", "lol", "lol"]);
  });

  test("a backup whose copies arrive before the nominee's, or after, is aligned by position", () => {
    const { conns, out, hear, drop } = setup(["bot", "p"]);
    const [bot, p] = conns;
    hear([p, bot], "lol"); // p's socket first
    hear([p], "x"); // p is ahead: the bot has not read x yet...
    hear([p], "lol");
    hear([bot], "x"); // ...the bot reads it, then dies before reading the second lol
    drop(bot);
    assert.deepEqual(out, ["lol", "x", "lol"]);

    const s = setup(["bot", "p"]);
    const [bot2, p2] = s.conns;
    s.hear([bot2, p2], "lol");
    s.hear([bot2], "x"); // p2 is behind: the bot delivered x and lol before p2 read them
    s.hear([bot2], "lol");
    s.drop(bot2);
    s.hear([p2], "x"); // p2's late copies are not delivered again...
    s.hear([p2], "lol");
    s.hear([p2], "lol"); // ...but a new lol is
    assert.deepEqual(s.out, ["lol", "x", "lol", "lol"]);
  });

  test("a backup's first copy of a line the nominee already delivered is not replayed at a hand-over hours later", () => {
    const { conns, out, hear, drop, later } = setup(["bot", "p"]);
    const [bot, p] = conns;
    hear([bot, p], "hi"); // the bot's copy first: p's copy is the first line p's history holds
    later(3 * 3600_000);
    drop(bot);
    hear([p], "hi");
    assert.deepEqual(out, ["hi", "hi"]);
  });

  test("several hand-overs in a row, with connections joining and leaving, lose and double nothing", () => {
    const { conns, out, hear, hearAll, drop } = setup(["bot", "p1", "p2", "p3"]);
    const [bot, p1, p2, p3] = conns;
    p3.channels.clear();
    hearAll([bot, p1, p2], ["lol", "x"]);
    p3.channels.add("#c");
    hearAll([bot, p1, p2, p3], ["lol"]);
    hearAll([p1, p2, p3], ["x", "lol"]); // bot dead
    drop(bot); // p1 or p2 replays x, lol
    hearAll([p2, p3], ["lol", "y"]); // whichever took over is... p1 is silently dead too
    p1.state = "disconnected";
    p2.channels.delete("#c"); // p2 leaves the channel
    hearAll([p3], ["x", "lol", "z"]);
    drop(p1);
    hearAll([p3], ["end"]);
    assert.deepEqual(out, ["lol", "x", "lol", "x", "lol", "lol", "y", "x", "lol", "z", "end"]);
  });

  test("the nominee leaving the channel hands over before the next line", () => {
    const { conns, out, hear, hearAll } = setup(["bot", "p"]);
    const [bot, p] = conns;
    hearAll([bot, p], ["lol", "x"]);
    bot.channels.delete("#c"); // kicked, say
    hear([p], "lol");
    hear([p], "x");
    assert.deepEqual(out, ["lol", "x", "lol", "x"]);
  });

  test("history is bounded, and only a few connections per channel keep one", () => {
    const names = Array.from({ length: 50 }, (_, i) => `p${i}`);
    const { conns, broker, hearAll } = setup(["bot", ...names]);
    hearAll(conns, ["a", "b"]);
    hearAll(conns.slice(1), Array.from({ length: 1_000 }, (_, i) => `line ${i}`));
    const kept = (broker as unknown as { historySizes?: (c: string) => number[] }).historySizes?.("#c") ?? [Infinity];
    assert.ok(kept.length <= 3, `at most 3 connections keep a history, saw ${kept.length}`);
    for (const n of kept) assert.ok(n <= 500, `a history holds at most 500 lines, saw ${n}`);
  });
});

describe("ChannelBroker with msgids", () => {
  test("the first copy of each msgid wins, from whichever connection; identical texts with their own msgids all pass", () => {
    const { conns, out, hear } = setup(["bot", "p1", "p2"]);
    const [bot, p1, p2] = conns;
    hear([p1, bot, p2], "lol", "m1");
    hear([bot, p2, p1], "x", "m2");
    hear([p2, p1], "lol", "m3"); // the bot missed it
    hear([bot], "lol", "m1"); // a late copy of an old one
    assert.deepEqual(out, ["lol", "x", "lol"]);
  });
});
