import assert from "node:assert/strict";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { metrics } from "../../src/metrics/metrics.js";
import type { MessageLink } from "../../src/store/DataStore.js";
import { MessageLinks } from "../../src/store/MessageLinks.js";
import { NedbDataStore } from "../../src/store/NedbDataStore.js";

describe("NeDB store", () => {
  let dir: string;
  let store: NedbDataStore;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "store-test-"));
    store = new NedbDataStore(dir);
    await store.open();
  });

  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("journals events whose keys hold dots (m.relates_to, m.federate) and gives them back intact", async () => {
    const event = { type: "m.room.create", content: { "m.federate": false, "m.relates_to": { rel_type: "m.replace" } } };
    await store.recordTransaction("t1", [event]);
    const pending = await store.getPendingEvents();
    assert.deepEqual(pending, [{ txnId: "t1", seq: 0, event }]);
    await store.markEventDone("t1", 0);
    assert.deepEqual(await store.getPendingEvents(), []);
    assert.ok(await store.hasTransaction("t1"));
  });

  test("PM rooms are found by user and nick, and by room; a newer room replaces the older", async () => {
    await store.setPmRoom({ roomId: "!a", userId: "@u:x", networkId: "net", nick: "bob", nickName: null });
    await store.setPmRoom({ roomId: "!b", userId: "@u:x", networkId: "net", nick: "bob", nickName: "Bob" });
    assert.equal((await store.getPmRoom("@u:x", "net", "bob"))?.roomId, "!b");
    assert.equal((await store.getPmRoomById("!b"))?.nickName, "Bob");
    assert.equal(await store.getPmRoomById("!a"), null);
  });

  test("keyed records: put replaces, list is per kind and oldest first, delete forgets, values with dots survive", async () => {
    await store.putRecord("linkRequest", "a", { roomId: "!r:x", "m.relates_to": 1 });
    await store.putRecord("linkRequest", "b", { n: 2 });
    await store.putRecord("position", "a", { at: 5 });
    await store.putRecord("linkRequest", "a", { roomId: "!s:x", "m.relates_to": 1 });
    assert.deepEqual((await store.getRecord("linkRequest", "a"))?.value, { roomId: "!s:x", "m.relates_to": 1 });
    assert.deepEqual((await store.listRecords("linkRequest")).map((r) => r.key), ["b", "a"]);
    assert.equal(await store.deleteRecord("linkRequest", "b"), true);
    assert.equal(await store.deleteRecord("linkRequest", "b"), false);
    assert.equal(await store.getRecord("linkRequest", "b"), null);
    assert.deepEqual((await store.listRecords("position")).map((r) => r.value), [{ at: 5 }]);
  });
});

describe("message links", () => {
  let dir: string;
  let store: NedbDataStore;
  const link = (i: number): MessageLink => ({ roomId: "!r:x", eventId: `$e${i}`, networkId: "net", msgid: `m${i}`, at: 1_000_000 + i });
  const gauge = async () => (await metrics.messageLinks.get()).values[0]?.value;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "links-test-"));
    store = new NedbDataStore(dir);
    await store.open();
  });

  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("are bounded: the oldest go first, in batches; writes are batched; the count is a metric", async () => {
    let inserts = 0;
    const put = store.putMessageLinks.bind(store);
    store.putMessageLinks = (links) => ((inserts += 1), put(links));
    const links = new MessageLinks(store, { max: 100, batchSize: 25, flushAfterMs: 60_000 });
    await links.load();
    for (let i = 0; i < 250; i += 5) links.add(Array.from({ length: 5 }, (_, j) => link(i + j)));
    await links.flush();
    assert.equal(inserts, 10, "250 links in 10 inserts of 25");
    // Over 100, the oldest are pruned down to 90 (a tenth below the bound) in one go.
    assert.equal(await store.countMessageLinks(), 90);
    assert.equal(links.size, 90);
    assert.equal(await gauge(), 90);
    assert.equal(await store.getMessageLinkByMsgid("net", "m159"), null, "the oldest are gone");
    assert.equal((await store.getMessageLinkByMsgid("net", "m160"))?.eventId, "$e160");
    assert.equal((await links.byEvent("$e249"))?.msgid, "m249", "the newest are kept");

    links.add([link(250)]);
    assert.equal((await links.byMsgid("net", "m250"))?.eventId, "$e250", "a link waiting to be written is found");
    await links.flush();
    assert.equal(await store.countMessageLinks(), 91);

    // A lower bound at the next start is applied at once.
    const smaller = new MessageLinks(store, { max: 50 });
    await smaller.load();
    assert.equal(await store.countMessageLinks(), 45);
    assert.equal(await gauge(), 45);

    // The age limit still holds: these links are from 1970.
    await smaller.pruneOld(24 * 60 * 60_000);
    assert.equal(await store.countMessageLinks(), 0);
    assert.equal(smaller.size, 0);
    assert.equal(await gauge(), 0);
  });
});

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
