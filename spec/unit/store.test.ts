import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
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
});
