import assert from "node:assert/strict";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { JournalLog } from "../../src/store/JournalLog.js";
import { NedbDataStore } from "../../src/store/NedbDataStore.js";

describe("the embedded journal (journal.log)", () => {
  const fresh = () => mkdtempSync(join(tmpdir(), "store-journal-"));

  test("pending events survive a restart in order; handled ones do not; a torn last line is skipped and the resend journalled", async () => {
    const dir = fresh();
    try {
      let store = new NedbDataStore(dir);
      await store.open();
      await store.recordTransaction("a", [{ n: 1 }, { n: 2 }]);
      await store.recordTransaction("b", [{ n: 3 }]);
      await store.markEventDone("a", 0);
      await store.close();
      // A crash in the middle of the next transaction's write: half a line at the end.
      appendFileSync(join(dir, "journal.log"), '{"t":"txn","id":"c","at":5,"events":[{"n"');
      store = new NedbDataStore(dir);
      await store.open();
      assert.deepEqual((await store.getPendingEvents()).map((p) => p.event), [{ n: 2 }, { n: 3 }]);
      assert.equal(await store.hasTransaction("a"), true);
      assert.equal(await store.hasTransaction("c"), false, "the torn transaction was never acknowledged");
      await store.recordTransaction("c", [{ n: 4 }]);
      await store.markEventDone("a", 1);
      await store.close();
      store = new NedbDataStore(dir);
      await store.open();
      assert.deepEqual((await store.getPendingEvents()).map((p) => p.event), [{ n: 3 }, { n: 4 }]);
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("many handled transactions are compacted away by pruning, without losing pending ones", async () => {
    const dir = fresh();
    try {
      const store = new NedbDataStore(dir);
      await store.open();
      await store.recordTransaction("keep", [{ n: "pending" }]);
      await Promise.all(Array.from({ length: 12_000 }, async (_, i) => {
        await store.recordTransaction(`t${i}`, [{ i }]);
        await store.markEventDone(`t${i}`, 0);
      }));
      const before = readFileSync(join(dir, "journal.log"), "utf8").split("\n").length;
      assert.equal(await store.pruneTransactions(-1), 12_000);
      const after = readFileSync(join(dir, "journal.log"), "utf8").split("\n").length;
      assert.ok(before > 24_000 && after < 10, `file lines ${before} → ${after}`);
      await store.recordTransaction("later", [{ n: "later" }]);
      await store.close();
      const reopened = new NedbDataStore(dir);
      await reopened.open();
      assert.deepEqual((await reopened.getPendingEvents()).map((p) => p.event), [{ n: "pending" }, { n: "later" }]);
      await reopened.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an older version's journal.db is adopted: its pending events replay, its transactions stay known", async () => {
    const dir = fresh();
    try {
      const docs = [
        { _id: "ev/old/0", kind: "event", txnId: "old", seq: 0, receivedAt: 1, event: JSON.stringify({ content: { "m.relates_to": 1 } }) },
        { _id: "txn/old", kind: "txn", txnId: "old", receivedAt: 1, completedAt: null },
        { _id: "txn/finished", kind: "txn", txnId: "finished", receivedAt: 1, completedAt: 2 },
      ];
      writeFileSync(join(dir, "journal.db"), docs.map((d) => JSON.stringify(d)).join("\n") + "\n");
      const store = new NedbDataStore(dir);
      await store.open();
      assert.deepEqual(await store.getPendingEvents(), [{ txnId: "old", seq: 0, event: { content: { "m.relates_to": 1 } } }]);
      assert.equal(await store.hasTransaction("finished"), true);
      assert.equal(existsSync(join(dir, "journal.db")), false, "the old file is retired once adopted");
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an old journal.db torn by a crash (events without their transaction record) is repaired at load, so the resend is journalled", async () => {
    const dir = mkdtempSync(join(tmpdir(), "store-torn-"));
    try {
      const torn = { _id: "ev/torn/0", kind: "event", txnId: "torn", seq: 0, receivedAt: 1, event: JSON.stringify({ type: "m.room.message" }) };
      writeFileSync(join(dir, "journal.db"), `${JSON.stringify(torn)}\n`);
      const store = new NedbDataStore(dir);
      await store.open();
      assert.deepEqual(await store.getPendingEvents(), [], "the torn events are gone (never acknowledged)");
      await store.recordTransaction("torn", [{ type: "m.room.message", content: { body: "again" } }]);
      assert.equal((await store.getPendingEvents()).length, 1, "the homeserver's resend is journalled");
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("JournalLog faults", () => {
  const fresh = () => mkdtempSync(join(tmpdir(), "journal-faults-"));

  test("a compaction in the same turn as an acknowledged transaction's write keeps that transaction", async () => {
    const dir = fresh();
    try {
      const journal = new JournalLog(dir);
      await journal.open();
      for (let i = 0; i < 10_050; i++) await journal.record(`t${i}`, []);
      const recorded = journal.record("A", [{ n: "A" }]);
      const pruned = journal.prune(0);
      await Promise.all([recorded, pruned]);
      await journal.close();
      const reopened = new JournalLog(dir);
      await reopened.open();
      assert.equal(reopened.has("A"), true);
      assert.deepEqual(reopened.pendingEvents().map((p) => p.event), [{ n: "A" }]);
      await reopened.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an append that fails part-way is not acknowledged, and cannot swallow the next transaction", async () => {
    const dir = fresh();
    try {
      const journal = new JournalLog(dir);
      await journal.open();
      const writer = journal as unknown as { appendText: (fd: number, text: string) => void };
      const real = writer.appendText;
      let failOnce = true;
      writer.appendText = (fd: number, text: string) => {
        if (!failOnce) return real(fd, text);
        failOnce = false;
        real(fd, text.slice(0, 10)); // half a line reaches the disk, then the disk is full
        throw Object.assign(new Error("ENOSPC"), { code: "ENOSPC" });
      };
      await assert.rejects(journal.record("lost", [{ n: 1 }]), /ENOSPC/);
      assert.equal(journal.has("lost"), false, "a transaction whose write failed is not seen (the homeserver resends it)");
      await journal.record("B", [{ n: 2 }]);
      await journal.close();
      const reopened = new JournalLog(dir);
      const { tornLines } = await reopened.open();
      assert.equal(tornLines, 0);
      assert.deepEqual(reopened.pendingEvents().map((p) => p.event), [{ n: 2 }]);
      await reopened.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
