import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DropLog } from "../../src/bridge/DropLog.js";
import { KeyedQueue, QueueFullError } from "../../src/bridge/KeyedQueue.js";
import { MembershipLanes, type MembershipChange, type Outcome } from "../../src/bridge/MembershipLanes.js";

const ROOM = "!room:test";
const change = (nick: string, want: "join" | "leave", reason = ""): MembershipChange => ({ networkId: "net", userId: `@irc_${nick}:test`, want, nick, reason });

/** Lanes whose Matrix side records what it was asked to do. */
function lanes(windowMs = 30, maxPendingPerRoom = 100, gate?: Promise<void>) {
  const applied: string[] = [];
  const outcomes: Outcome[] = [];
  const l = new MembershipLanes(
    { windowMs: () => windowMs, maxPendingPerRoom },
    {
      apply: async (roomId, c) => {
        if (gate) await gate;
        applied.push(`${c.want} ${c.nick ?? c.userId}${c.reason ? ` (${c.reason})` : ""}`);
      },
      pace: async () => undefined,
      onOutcome: (o) => outcomes.push(o),
    },
  );
  return { l, applied, outcomes };
}

describe("MembershipLanes", () => {
  test("a nick that joins and parts within the window costs Matrix nothing", async () => {
    const { l, applied } = lanes();
    for (let i = 0; i < 500; i++) {
      l.set(ROOM, change("churn", "join"));
      l.set(ROOM, change("churn", "leave", "bye"));
    }
    assert.equal(l.pending, 0, "the part cancels the pending join");
    await l.idle();
    assert.deepEqual(applied, []);
  });

  test("only the net state per ghost is applied, once the window has passed", async () => {
    const { l, applied } = lanes();
    const started = Date.now();
    for (let i = 0; i < 100; i++) {
      l.set(ROOM, change("stayer", "join"));
      l.set(ROOM, change("stayer", "leave"));
    }
    l.set(ROOM, change("stayer", "join"));
    l.set(ROOM, change("other", "join"));
    assert.equal(l.pending, 2);
    await l.idle();
    assert.ok(Date.now() - started >= 25, "changes wait for the coalescing window");
    assert.deepEqual(applied, ["join stayer", "join other"]);
    assert.ok(l.isPresent(ROOM, "@irc_stayer:test"));

    // Now in the room: leave and come back within the window is nothing; leaving for good is one leave.
    l.set(ROOM, change("stayer", "leave"));
    l.set(ROOM, change("stayer", "join"));
    l.set(ROOM, change("other", "leave", "gone"));
    await l.idle();
    assert.deepEqual(applied, ["join stayer", "join other", "leave other (gone)"]);
    assert.ok(!l.isPresent(ROOM, "@irc_other:test"));
  });

  test("a join of a ghost already in the room (it spoke there) is not sent again", async () => {
    const { l, applied, outcomes } = lanes(0);
    l.notePresent(ROOM, "@irc_talker:test");
    l.set(ROOM, change("talker", "join"));
    await l.idle();
    assert.deepEqual(applied, []);
    assert.deepEqual(outcomes, ["coalesced"]);
  });

  test("a member-list sync is due at once", async () => {
    const { l, applied } = lanes(60_000);
    l.set(ROOM, change("synced", "join"), true);
    await l.idle();
    assert.deepEqual(applied, ["join synced"]);
  });

  test("a ghost's leave waits for the lines it said before leaving", async () => {
    const { l, applied } = lanes(0);
    const release = l.holdFor(ROOM, "@irc_speaker:test");
    // The line is still queued when the part comes; the line's delivery puts the ghost in the room.
    l.set(ROOM, change("speaker", "leave", "later"));
    l.notePresent(ROOM, "@irc_speaker:test");
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(applied, [], "the leave is held while the line is queued");
    release();
    release(); // a second call does nothing
    await l.idle();
    assert.deepEqual(applied, ["leave speaker (later)"]);
  });

  test("a part while the ghost's join is being applied is applied after it", async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const { l, applied } = lanes(0, 100, gate);
    l.set(ROOM, change("slow", "join"));
    await new Promise((r) => setTimeout(r, 10));
    l.set(ROOM, change("slow", "leave", "quick"));
    open();
    await l.idle();
    assert.deepEqual(applied, ["join slow", "leave slow (quick)"]);
  });

  test("at the cap, joins of absent ghosts are dropped; leaves never are", async () => {
    const { l, applied, outcomes } = lanes(20, 2);
    l.notePresent(ROOM, "@irc_inroom:test");
    l.set(ROOM, change("a", "join"));
    l.set(ROOM, change("b", "join"));
    l.set(ROOM, change("c", "join"));
    l.set(ROOM, change("inroom", "leave"));
    assert.equal(outcomes.filter((o) => o === "dropped").length, 1);
    assert.equal(l.pendingIn(ROOM), 3);
    await l.idle();
    assert.deepEqual(applied, ["join a", "join b", "leave inroom"]);
  });

  test("a failed change is counted and does not stop the lane", async () => {
    const outcomes: Outcome[] = [];
    const l = new MembershipLanes(
      { windowMs: () => 0, maxPendingPerRoom: 10 },
      {
        apply: async (_room, c) => {
          if (c.nick === "bad") throw new Error("homeserver says no");
        },
        pace: async () => undefined,
        onOutcome: (o) => outcomes.push(o),
      },
    );
    l.set(ROOM, change("bad", "join"));
    l.set(ROOM, change("good", "join"));
    await l.idle();
    assert.deepEqual(outcomes, ["failed", "applied"]);
    assert.ok(!l.isPresent(ROOM, "@irc_bad:test") && l.isPresent(ROOM, "@irc_good:test"));
  });
});

describe("KeyedQueue caps", () => {
  test("refuses pushes beyond the per-key and total caps, and reports them", async () => {
    const refused: string[] = [];
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const q = new KeyedQueue(undefined, { maxPerKey: 2, maxTotal: 3 }, (err, kind) => refused.push(`${err.key} ${err.scope} ${kind}`));
    const a1 = q.push("a", () => gate);
    const a2 = q.push("a", async () => "a2");
    await assert.rejects(q.push("a", async () => "a3", "irc_line"), QueueFullError);
    const b1 = q.push("b", () => gate);
    await assert.rejects(q.push("c", async () => "c1"), /room queues are full/);
    assert.deepEqual(refused, ["a key irc_line", "c total other"]);
    assert.equal(q.depthOf("a"), 2);
    assert.equal(q.deepest, 2);
    open();
    await Promise.all([a1, a2, b1]);
    assert.equal(q.depth, 0);
    assert.equal(q.deepest, 0);
    assert.equal(await q.push("a", async () => "again"), "again");
  });
});

describe("DropLog", () => {
  test("logs the first drop at once, then at most once per interval with the count", () => {
    let now = 0;
    const lines: unknown[] = [];
    const drops = new DropLog((message, meta) => lines.push({ message, ...meta }), "full", 1000, () => now);
    drops.dropped("room", { room: "!a" });
    drops.dropped("room");
    drops.dropped("room");
    assert.equal(lines.length, 1);
    now = 1500;
    drops.dropped("room");
    assert.deepEqual(lines, [
      { message: "full", room: "!a", droppedSinceLastLog: 1 },
      { message: "full", droppedSinceLastLog: 3 },
    ]);
  });
});
