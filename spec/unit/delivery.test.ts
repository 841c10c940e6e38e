import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { describe, test } from "node:test";
import { EchoTracker } from "../../src/irc/EchoTracker.js";
import { IrcFailure } from "../../src/irc/errors.js";
import type { IrcConnection } from "../../src/irc/IrcConnection.js";
import { explainNumeric, readNumeric } from "../../src/irc/numerics.js";
import { Outbox } from "../../src/irc/Outbox.js";

const names = { casefold: (s: string) => s.toLowerCase() };

describe("numerics table", () => {
  test("join failures the IRC library does not map are read with their channel and words", () => {
    for (const [code, words] of [["477", /registered nick/], ["489", /TLS/], ["520", /operators only/], ["470", /forwards to #other/], ["474", /banned/]] as const) {
      const reply = readNumeric(`@time=x :irc.test ${code} alice #chan ${code === "470" ? "#other " : ""}:Cannot join channel`);
      assert.ok(reply, code);
      assert.equal(reply.meaning?.role, "join", code);
      assert.equal(reply.target, "#chan", code);
      assert.match(explainNumeric(reply, "TestNet"), words);
    }
  });

  test("other lines are not numerics, and unknown numerics have no meaning", () => {
    assert.equal(readNumeric(":a!b@c PRIVMSG #x :474 is a number"), null);
    assert.equal(readNumeric(":irc.test 4744 x"), null);
    assert.equal(readNumeric(":irc.test 999 alice :what")?.meaning, undefined);
    assert.match(explainNumeric(readNumeric(":s 401 me bob :No such nick")!, "TestNet"), /bob is not on TestNet/);
  });
});

describe("echo tracking", () => {
  test("a message confirmed by the echoes of its lines resolves with the last msgid, whatever the server did to the text", async () => {
    const tracker = new EchoTracker(names);
    const { echoed } = tracker.expect("#c", 2);
    const later = tracker.expect("#c", 1);
    tracker.onEcho("#C", null);
    tracker.onEcho("#c", "id-2");
    assert.equal(await echoed, "id-2");
    tracker.onEcho("#c", "id-3");
    assert.equal(await later.echoed, "id-3");
  });

  test("a split line's pieces match even with formatting reopened on each (or stripped by +c)", async () => {
    const tracker = new EchoTracker(names);
    // Two pieces whose echoes carry reopened codes, then one whose colours a +c channel stripped.
    const { echoed } = tracker.expect("#c", 2);
    tracker.onEcho("#c", null);
    tracker.onEcho("#c", "id-3");
    assert.equal(await echoed, "id-3");
    const stripped = tracker.expect("#c", 1);
    tracker.onEcho("#c", "id-4");
    assert.equal(await stripped.echoed, "id-4");
  });

  test("no echo is not delivery: a dead link fails the line as disconnected, to be sent again", async () => {
    let tracker!: EchoTracker;
    tracker = new EchoTracker(names, async () => {
      tracker.clear(); // the connection drops the silent link
      return false;
    }, 5);
    const { echoed, written } = tracker.expect("#c", 1);
    written();
    await assert.rejects(echoed, (err: IrcFailure) => err.code === "disconnected" && !err.fatal);
  });

  test("a link that answers but never echoes the line: the sender is told it may not have arrived", async () => {
    const tracker = new EchoTracker(names, async () => true, 5);
    const wait = tracker.expect("#c", 1);
    wait.written();
    await assert.rejects(wait.echoed, (err: IrcFailure) => err.code === "unconfirmed" && /may not have arrived/.test(err.message));
  });

  test("a cancelled line (never written) is forgotten", async () => {
    const tracker = new EchoTracker(names, async () => true, 5);
    const first = tracker.expect("#c", 1);
    first.cancel();
    const second = tracker.expect("#c", 1);
    tracker.onEcho("#c", "m2");
    assert.equal(await second.echoed, "m2");
  });
});

/** A connection stand-in for the outbox: always connected; joins wait on a switch per channel. */
class FakeConnection extends EventEmitter {
  state = "connected";
  chanTypes = "#";
  sent: string[] = [];
  readonly joins = new Map<string, Promise<void>>();
  casefold(s: string) {
    return s.toLowerCase();
  }
  async whenConnected() {}
  join(channel: string) {
    return this.joins.get(channel) ?? Promise.resolve();
  }
  async send(_kind: string, target: string, text: string): Promise<string | null> {
    this.sent.push(`${target} ${text}`);
    return null;
  }
}

describe("outbox", () => {
  test("many messages wait for flood control: none is dropped for count", async () => {
    const conn = new FakeConnection();
    const outbox = new Outbox(conn as unknown as IrcConnection, 5000, 60_000);
    const all = Array.from({ length: 300 }, (_, i) => outbox.send({ target: "#c", channelKey: null, kind: "privmsg", lines: [`m${i}`] }));
    await Promise.all(all);
    assert.deepEqual(conn.sent, Array.from({ length: 300 }, (_, i) => `#c m${i}`));
  });

  test("one channel's slow join never holds messages to other targets", async () => {
    const conn = new FakeConnection();
    let open!: () => void;
    conn.joins.set("#slow", new Promise<void>((resolve) => (open = resolve)));
    const outbox = new Outbox(conn as unknown as IrcConnection, 5000, 60_000);
    const slow = outbox.send({ target: "#slow", channelKey: null, kind: "privmsg", lines: ["waits"] });
    await outbox.send({ target: "#fast", channelKey: null, kind: "privmsg", lines: ["goes"] });
    await outbox.send({ target: "bob", channelKey: null, kind: "privmsg", lines: ["pm goes"] });
    assert.deepEqual(conn.sent, ["#fast goes", "bob pm goes"]);
    open();
    await slow;
    assert.deepEqual(conn.sent, ["#fast goes", "bob pm goes", "#slow waits"]);
  });

  test("a line whose connection dropped before it was confirmed is sent again", async () => {
    const conn = new FakeConnection();
    let failures = 1;
    conn.send = async function (this: FakeConnection, _kind: string, target: string, text: string) {
      this.sent.push(`${target} ${text}`);
      if (failures-- > 0) throw new IrcFailure("disconnected", "lost before the echo");
      return "id";
    };
    const outbox = new Outbox(conn as unknown as IrcConnection, 5000, 60_000);
    assert.deepEqual(await outbox.send({ target: "#c", channelKey: null, kind: "privmsg", lines: ["again"] }), ["id"]);
    assert.deepEqual(conn.sent, ["#c again", "#c again"]);
  });
});
