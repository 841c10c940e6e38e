import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { KeyedQueue } from "../../src/bridge/KeyedQueue.js";
import { SendPacer } from "../../src/irc/SendPacer.js";

const deferred = () => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
};

describe("KeyedQueue", () => {
  test("runs jobs of one key in order, one at a time", async () => {
    const q = new KeyedQueue();
    const order: string[] = [];
    const gate = deferred();
    const first = q.push("room", async () => {
      await gate.promise;
      order.push("a");
    });
    const second = q.push("room", async () => void order.push("b"));
    await Promise.resolve();
    assert.deepEqual(order, []);
    gate.resolve();
    await Promise.all([first, second]);
    assert.deepEqual(order, ["a", "b"]);
  });

  test("other keys are not held up, and a failure does not stall the queue", async () => {
    const q = new KeyedQueue();
    const gate = deferred();
    const slow = q.push("a", () => gate.promise);
    assert.equal(await q.push("b", async () => "b done"), "b done");
    await assert.rejects(q.push("c", async () => Promise.reject(new Error("boom"))), /boom/);
    assert.equal(await q.push("c", async () => "after failure"), "after failure");
    assert.equal(q.depth, 1);
    gate.resolve();
    await slow;
    await q.idle();
    assert.equal(q.depth, 0);
  });
});

describe("SendPacer", () => {
  test("lets a burst out at once, then paces, in order", async () => {
    const pacer = new SendPacer(3, 50);
    const sent: number[] = [];
    const started = Date.now();
    await Promise.all(Array.from({ length: 6 }, (_, i) => pacer.send(() => void sent.push(i))));
    assert.deepEqual(sent, [0, 1, 2, 3, 4, 5]);
    // 3 beyond the burst at 50/s need at least ~60 ms; measured loosely, never asserted tight.
    assert.ok(Date.now() - started >= 40, `paced sends took ${Date.now() - started} ms`);
  });

  test("clear() fails what is still queued", async () => {
    const pacer = new SendPacer(1, 1);
    const first = pacer.send(() => undefined);
    const second = pacer.send(() => undefined);
    pacer.clear(new Error("gone"));
    await first;
    await assert.rejects(second, /gone/);
  });
});
