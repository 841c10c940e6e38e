/**
 * The hand-over against many random schedules: lines from a tiny alphabet (so most repeat),
 * each connection reading its copies in the server's order but interleaved at random with the
 * others, the nominee dying silently and being noticed later, a second nominee dying too, and
 * a connection joining late. One connection stays alive and in the channel all along, so
 * every line can reach Matrix: each must arrive exactly once, in order. Lines are a second
 * apart and every copy of a line carries the same time (copies are read within milliseconds).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ChannelBroker } from "../../src/irc/ChannelBroker.js";
import type { IrcConnection, IrcMessage } from "../../src/irc/IrcConnection.js";
import { configureLogging } from "../../src/logging.js";
import { prng } from "../harness/prng.js";

configureLogging({ level: "warn", format: "console" } as Parameters<typeof configureLogging>[0]); // thousands of hand-overs


const WARM_UP = 3;

class Conn {
  state = "connected";
  joined = true;
  /** Copies sent by the server, not read yet. */
  readonly queue: IrcMessage[] = [];
  /** Still receiving from the server (false: its link is silently dead). */
  alive = true;
  constructor(readonly name: string) {}
  isJoined(): boolean {
    return this.state === "connected" && this.joined;
  }
}

function run(seed: number): { out: string[]; said: string[] } {
  const rnd = prng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  const [bot, p1, p2, late] = ["bot", "p1", "p2", "late"].map((n) => new Conn(n));
  const conns = [bot, p1, p2, late];
  late.joined = false;
  const broker = new ChannelBroker("net", () => conns.filter((c) => c.isJoined()) as unknown as IrcConnection[]);
  const out: string[] = [];
  broker.on("line", (m) => out.push(`${m.nick}: ${m.text}`));
  const lost = (c: Conn) => {
    c.state = "disconnected";
    broker.onConnectionLost(c as unknown as IrcConnection);
  };
  const said: string[] = [];
  const total = 40 + Math.floor(rnd() * 40);
  const lateJoinAt = Math.floor(rnd() * total);
  // The bot dies after the channel's first lines have been read by the connections there: a
  // connection that has not read a line yet keeps no history (see ChannelBroker), so lines
  // only it had would have no one to replay them.
  const botDiesAt = WARM_UP + Math.floor(rnd() * (total - WARM_UP));
  const botNoticedAt = botDiesAt + Math.floor(rnd() * 10);
  // Whoever takes over from the bot may die silently too (p1 only: p2 stays, so nothing is unrecoverable).
  const p1DiesAt = botDiesAt + Math.floor(rnd() * 20);
  const p1NoticedAt = p1DiesAt + Math.floor(rnd() * 10);
  const read = (c: Conn) => broker.onLine(c as unknown as IrcConnection, "#c", c.queue.shift()!);
  // Reads some pending copies, at random, keeping each connection within a few lines of the server.
  const readSome = (all: boolean) => {
    for (;;) {
      const pending = conns.filter((c) => c.queue.length > 0 && c.state === "connected");
      if (pending.length === 0) return;
      const lagging = pending.filter((c) => c.queue.length > 3);
      if (!all && lagging.length === 0 && rnd() < 0.5) return;
      read(lagging.length > 0 ? pick(lagging) : pick(pending));
    }
  };
  for (let i = 0; i < total; i++) {
    if (i === lateJoinAt) late.joined = true;
    if (i === botDiesAt) bot.alive = false;
    if (i === p1DiesAt) p1.alive = false;
    const text = pick(["lol", "lol", "x"]);
    // Now and then a Matrix user's puppet speaks: without echo-message it never reads its own line.
    const nick = rnd() < 0.15 ? pick(["p1", "p2", "late"]) : "bob";
    said.push(`${nick}: ${text}`);
    for (const c of conns) {
      if (c.alive && c.joined && c.state === "connected" && c.name !== nick) c.queue.push({ kind: "privmsg", nick, ident: "b", hostname: "h", target: "#c", text, tags: {}, receivedAt: 1_000 * i });
    }
    readSome(i < WARM_UP);
    if (i === botNoticedAt) {
      while (bot.queue.length) read(bot);
      lost(bot);
    }
    if (i === p1NoticedAt && bot.state !== "connected") {
      while (p1.queue.length) read(p1);
      lost(p1);
    }
  }
  // The end: dead links are noticed at last, and every copy still pending is read.
  readSome(true);
  for (const c of [bot, p1]) if (!c.alive && c.state === "connected") lost(c);
  readSome(true);
  return { out, said };
}

test("random schedules: every line once, in order, across one or two hand-overs", () => {
  for (let seed = 1; seed <= 3_000; seed++) {
    const { out, said } = run(seed);
    // Our own puppets' lines are not relayed back to Matrix (IrcToMatrix drops them), so only
    // the others' lines are checked: all there, once each, in order.
    const others = (lines: string[]) => lines.filter((l) => l.startsWith("bob: "));
    assert.deepEqual(others(out), others(said), `seed ${seed}`);
  }
});
