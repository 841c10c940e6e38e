/**
 * Matrix → IRC pipelining: a user's lines go out without waiting for each echo, echoes are
 * matched in order, and faults (a dropped link, a refused line, an old message) are handled
 * line by line: unconfirmed lines are written again in order, a refusal fails only its message.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { describe, test } from "node:test";
import { EchoTracker } from "../../src/irc/EchoTracker.js";
import { IrcFailure } from "../../src/irc/errors.js";
import type { IrcConnection } from "../../src/irc/IrcConnection.js";
import { Outbox } from "../../src/irc/Outbox.js";

const names = { casefold: (s: string) => s.toLowerCase() };
/** Lets queued promise callbacks (and the outbox's loops) run. */
const settle = () => new Promise((r) => setImmediate(r));

interface InFlight {
  line: string;
  resolve: (msgid: string | null) => void;
  reject: (err: Error) => void;
}

/**
 * A connection whose lines are written at once and confirmed only when the test says so:
 * `echo` and `refuse` answer the oldest line in flight, `drop` fails them all as a lost link would.
 */
class PipeConnection extends EventEmitter {
  state: "connected" | "disconnected" = "connected";
  chanTypes = "#";
  written: string[] = [];
  inFlight: InFlight[] = [];
  casefold(s: string) {
    return s.toLowerCase();
  }
  whenConnected(timeoutMs: number): Promise<void> {
    if (this.state === "connected") return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off("registered", up);
        reject(new IrcFailure("still_disconnected", "still not reconnected"));
      }, timeoutMs);
      const up = () => {
        clearTimeout(timer);
        resolve();
      };
      this.once("registered", up);
    });
  }
  async join() {}
  send(_kind: string, target: string, text: string, _tags?: unknown, onWritten?: () => void): Promise<string | null> {
    if (this.state !== "connected") return Promise.reject(new IrcFailure("disconnected", "not connected to IRC"));
    this.written.push(`${target} ${text}`);
    onWritten?.();
    return new Promise((resolve, reject) => this.inFlight.push({ line: `${target} ${text}`, resolve, reject }));
  }
  echo(msgid: string | null = null): string {
    const entry = this.inFlight.shift();
    assert.ok(entry, "a line in flight to echo");
    entry.resolve(msgid);
    return entry.line;
  }
  refuse(err: IrcFailure): void {
    const entry = this.inFlight.shift();
    assert.ok(entry, "a line in flight to refuse");
    entry.reject(err);
  }
  drop(): void {
    this.state = "disconnected";
    for (const entry of this.inFlight.splice(0)) entry.reject(new IrcFailure("disconnected", "the IRC connection was lost before the server confirmed it"));
  }
  reconnect(): void {
    this.state = "connected";
    this.emit("registered", "me");
  }
  /** Echoes every line in flight (and those the outbox writes meanwhile) until none is left. */
  async echoAll(prefix = "id"): Promise<void> {
    for (let i = 0; i < 1000; i++) {
      await settle();
      if (this.inFlight.length === 0) return;
      while (this.inFlight.length > 0) this.echo(`${prefix}:${this.inFlight[0].line}`);
    }
  }
}

const message = (target: string, ...lines: string[]) => ({ target, channelKey: null, kind: "privmsg" as const, lines });

describe("outbox pipelining", () => {
  test("a user's lines are written before the first one's echo comes back, and echoes settle them in order", async () => {
    const conn = new PipeConnection();
    const outbox = new Outbox(conn as unknown as IrcConnection, 5000, 60_000);
    const a = outbox.send(message("#c", "a1", "a2"));
    const b = outbox.send(message("#c", "b1"));
    await settle();
    assert.deepEqual(conn.written, ["#c a1", "#c a2", "#c b1"], "line 2 and the next message are written before line 1's echo");
    let bDone = false;
    void b.then(() => (bDone = true));
    conn.echo("m1");
    conn.echo("m2");
    assert.deepEqual(await a, ["m1", "m2"]);
    assert.equal(bDone, false, "b waits for its own echo");
    conn.echo("m3");
    assert.deepEqual(await b, ["m3"]);
  });

  test("at most a bounded number of lines wait for their echoes on one connection", async () => {
    const conn = new PipeConnection();
    const outbox = new Outbox(conn as unknown as IrcConnection, 5000, 60_000);
    const all = Array.from({ length: 30 }, (_, i) => outbox.send(message(i % 2 ? "#c" : "bob", `m${i}`)));
    await settle();
    assert.equal(conn.written.length, 10);
    conn.echo();
    await settle();
    assert.equal(conn.written.length, 11, "one confirmed line lets one more go");
    await conn.echoAll();
    await Promise.all(all);
    assert.equal(conn.written.length, 30);
    assert.equal(outbox.depth, 0);
  });

  test("a smaller flood-control burst bounds the lines in flight (a server that paces us holds them in its queue)", async () => {
    const conn = Object.assign(new PipeConnection(), { options: { sendRate: { burst: 3, linesPerSecond: 1 } } });
    const outbox = new Outbox(conn as unknown as IrcConnection, 5000, 60_000);
    const all = Array.from({ length: 8 }, (_, i) => outbox.send(message("#c", `m${i}`)));
    await settle();
    assert.equal(conn.written.length, 3);
    await conn.echoAll();
    await Promise.all(all);
  });

  test("a link lost with 3 lines in flight: those 3 are written again in order after the reconnect, then later messages", async () => {
    const conn = new PipeConnection();
    const outbox = new Outbox(conn as unknown as IrcConnection, 5000, 60_000);
    const first = [outbox.send(message("#c", "m0")), outbox.send(message("#c", "m1", "m2")), outbox.send(message("#c", "m3"))];
    await settle();
    conn.echo("id0");
    assert.deepEqual(await first[0], ["id0"]);
    assert.equal(conn.inFlight.length, 3);
    conn.drop();
    const later = [outbox.send(message("#c", "m4")), outbox.send(message("#c", "m5"))];
    await settle();
    assert.deepEqual(conn.written, ["#c m0", "#c m1", "#c m2", "#c m3"], "nothing written while down");
    conn.reconnect();
    await settle();
    assert.deepEqual(conn.written.slice(4), ["#c m1", "#c m2", "#c m3", "#c m4", "#c m5"]);
    await conn.echoAll();
    assert.deepEqual(await first[1], ["id:#c m1", "id:#c m2"]);
    assert.deepEqual(await Promise.all(later), [["id:#c m4"], ["id:#c m5"]]);
  });

  test("a link lost part-way through a message re-sends only its unconfirmed lines", async () => {
    const conn = new PipeConnection();
    const outbox = new Outbox(conn as unknown as IrcConnection, 5000, 60_000);
    const sent = outbox.send(message("#c", "l1", "l2", "l3"));
    await settle();
    conn.echo("id1");
    conn.drop();
    await settle();
    conn.reconnect();
    await conn.echoAll();
    assert.deepEqual(conn.written, ["#c l1", "#c l2", "#c l3", "#c l2", "#c l3"]);
    assert.deepEqual(await sent, ["id1", "id:#c l2", "id:#c l3"]);
  });

  test("a refused line fails its own message only; the messages after it are delivered", async () => {
    const conn = new PipeConnection();
    const outbox = new Outbox(conn as unknown as IrcConnection, 5000, 60_000);
    const a = outbox.send(message("#c", "a1"));
    const b = outbox.send(message("#c", "b1", "b2"));
    const c = outbox.send(message("#c", "c1"));
    await settle();
    assert.equal(conn.written.length, 4);
    conn.echo("a");
    conn.refuse(new IrcFailure("err_cannotsendtochan", "#c refused it", true));
    conn.echo(null); // b2 (the server took it, but b failed already)
    conn.echo("c");
    assert.deepEqual(await a, ["a"]);
    await assert.rejects(b, (err: IrcFailure) => err.code === "err_cannotsendtochan");
    assert.deepEqual(await c, ["c"]);
    assert.equal(outbox.depth, 0);
  });

  test("a refusal while later lines of the same message still wait: those are not written", async () => {
    const conn = new PipeConnection();
    const outbox = new Outbox(conn as unknown as IrcConnection, 5000, 60_000);
    // 12 lines: 10 go out at once, the last 2 wait for room.
    const big = outbox.send(message("bob", ...Array.from({ length: 12 }, (_, i) => `l${i}`)));
    const after = outbox.send(message("bob", "next"));
    await settle();
    assert.equal(conn.written.length, 10);
    conn.refuse(new IrcFailure("err_nosuchnick", "bob is not on IRC right now", true));
    await assert.rejects(big, (err: IrcFailure) => err.code === "err_nosuchnick");
    await conn.echoAll();
    assert.ok(!conn.written.includes("bob l10") && !conn.written.includes("bob l11"), "the failed message's waiting lines are dropped");
    assert.deepEqual(conn.written.at(-1), "bob next");
    assert.deepEqual(await after, ["id:bob next"]);
  });

  test("lines not confirmed before the link dropped are not sent again once they are too old", async () => {
    const conn = new PipeConnection();
    const outbox = new Outbox(conn as unknown as IrcConnection, 5000, 100);
    const old = outbox.send(message("#c", "old"));
    // Fails when its time runs out while the link is down (still_disconnected), or at the reconnect (expired).
    const oldFailed = assert.rejects(old, (err: IrcFailure) => err.code === "expired" || err.code === "still_disconnected");
    await settle();
    conn.drop();
    await new Promise((r) => setTimeout(r, 150));
    const fresh = outbox.send(message("#c", "fresh"));
    conn.reconnect();
    await oldFailed;
    await conn.echoAll();
    assert.deepEqual(await fresh, ["id:#c fresh"]);
    assert.deepEqual(conn.written, ["#c old", "#c fresh"]);
  });

  test("a connection that stays down fails waiting messages when they are too old", async () => {
    const conn = new PipeConnection();
    conn.state = "disconnected";
    const outbox = new Outbox(conn as unknown as IrcConnection, 5000, 50);
    await assert.rejects(outbox.send(message("#c", "x")), (err: IrcFailure) => err.code === "expired" || err.code === "still_disconnected");
    assert.deepEqual(conn.written, []);
    assert.equal(outbox.depth, 0);
  });

  test("the queue bound still refuses messages beyond it", async () => {
    const conn = new PipeConnection();
    const outbox = new Outbox(conn as unknown as IrcConnection, 3, 60_000);
    const sent = [1, 2, 3].map((i) => outbox.send(message("#c", `m${i}`)));
    await assert.rejects(outbox.send(message("#c", "m4")), (err: IrcFailure) => err.code === "queue_full");
    await conn.echoAll();
    await Promise.all(sent);
  });

  test("the first-written callback runs once per message, even when its first line is written again", async () => {
    const conn = new PipeConnection();
    const outbox = new Outbox(conn as unknown as IrcConnection, 5000, 60_000);
    let calls = 0;
    const sent = outbox.send({ ...message("#c", "x"), onFirstWritten: () => calls++ });
    await settle();
    conn.drop();
    await settle();
    conn.reconnect();
    await conn.echoAll();
    await sent;
    assert.equal(calls, 1);
  });
});

describe("echo matching with several lines in flight", () => {
  test("a refusal of a split line's first piece does not fail the next message (its other pieces are answered too)", async () => {
    const tracker = new EchoTracker(names);
    const split = tracker.expect("#c", 2);
    const next = tracker.expect("#c", 1);
    tracker.onRefused("#c", new IrcFailure("err_cannotsendtochan", "refused", true));
    tracker.onRefused("#c", new IrcFailure("err_cannotsendtochan", "refused", true));
    tracker.onEcho("#c", "id-next");
    await assert.rejects(split.echoed, (err: IrcFailure) => err.code === "err_cannotsendtochan");
    assert.equal(await next.echoed, "id-next");
  });

  test("echoes and refusals for different targets are matched per target, oldest first", async () => {
    const tracker = new EchoTracker(names);
    const c1 = tracker.expect("#c", 1);
    const bob = tracker.expect("Bob", 1);
    const c2 = tracker.expect("#c", 1);
    tracker.onRefused("bob", new IrcFailure("err_nosuchnick", "bob is not here", true));
    tracker.onEcho("#C", "c-1");
    tracker.onEcho("#c", "c-2");
    assert.equal(await c1.echoed, "c-1");
    assert.equal(await c2.echoed, "c-2");
    await assert.rejects(bob.echoed, (err: IrcFailure) => err.code === "err_nosuchnick");
  });

  test("the echo timeout runs from when the line is written, not while it waits for flood control", async () => {
    let checks = 0;
    const tracker = new EchoTracker(names, async () => (checks++, true), 30);
    const waiting = tracker.expect("#c", 1);
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(checks, 0, "no link check for a line not written yet");
    waiting.written();
    await assert.rejects(waiting.echoed, (err: IrcFailure) => err.code === "unconfirmed");
    assert.equal(checks, 1);
  });
});
