/**
 * `migrate-store` copies an NeDB store into PostgreSQL: every kind of record, the journal's
 * pending events in order (and the handled transactions, so a resend is still refused), counts
 * printed; a second run changes nothing, and a copy cut short is finished by running it again.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { NedbDataStore } from "../../src/store/NedbDataStore.js";
import { PgDataStore } from "../../src/store/PgDataStore.js";
import { migrateStore } from "../../src/store/migrateStore.js";
import { PostgresCluster } from "../harness/postgres.js";

describe("migrate-store", { timeout: 120_000 }, () => {
  const cluster = new PostgresCluster();
  const dir = mkdtempSync(join(tmpdir(), "migrate-store-"));
  let url: string;

  before(async () => {
    await cluster.start();
    url = await cluster.createDatabase("migrated");
    const nedb = new NedbDataStore(dir);
    await nedb.open();
    await nedb.upsertRoomLink({ roomId: "!a:x", networkId: "net", channel: "#c", channelName: "#C", origin: "portal", sealedKey: "sealed" });
    await nedb.upsertGhost({ userId: "@irc_net_bob:x", networkId: "net", nick: "bob", displayName: "bob" });
    for (let i = 0; i < 30; i++) {
      await nedb.upsertPuppet({ userId: `@u${i}:x`, networkId: "net", nick: `u${i}[m]`, username: `u${i}`, ipv6: null, channels: ["#C"], lastActiveAt: i, password: null, account: null });
      await nedb.upsertUser({ userId: `@u${i}:x`, adminRoomId: `!adm${i}:x`, features: { mentions: i % 2 === 0 }, ignored: {} });
    }
    await nedb.setPmRoom({ roomId: "!pm:x", userId: "@u1:x", networkId: "net", nick: "bob", nickName: "Bob", reinvitedAt: 5 });
    await nedb.putChanopState({ roomId: "!a:x", bridgeLevels: [["@u1:x", 50]], channelModes: [["net/#c", "+nt"]] });
    await nedb.putMessageLinks(Array.from({ length: 5000 }, (_, i) => ({ roomId: "!a:x", eventId: `$e${i}`, networkId: "net", msgid: `m${i}`, at: Date.now() - 5000 + i })));
    await nedb.putRecord("position", "a", { at: 1 });
    await nedb.putRecord("position", "b", { at: 2 });
    await nedb.recordTransaction("done", [{ type: "x" }]);
    await nedb.markEventDone("done", 0);
    await nedb.recordTransaction("t1", [{ type: "a0" }, { type: "a1", content: { "m.relates_to": {} } }]);
    await nedb.recordTransaction("t2", [{ type: "b0" }]);
    await nedb.markEventDone("t1", 0);
    await nedb.close();
  });

  after(async () => {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const check = async () => {
    const store = new PgDataStore(url, 2);
    await store.open();
    try {
      assert.deepEqual(await store.getRoomLinks(), [{ roomId: "!a:x", networkId: "net", channel: "#c", channelName: "#C", origin: "portal", sealedKey: "sealed" }]);
      assert.equal((await store.getGhost("@irc_net_bob:x"))?.nick, "bob");
      assert.equal((await store.getPuppets("net")).length, 30);
      assert.deepEqual((await store.getPuppet("@u7:x", "net"))?.channels, ["#C"]);
      assert.equal((await store.getUsers()).find((u) => u.userId === "@u2:x")?.adminRoomId, "!adm2:x");
      assert.deepEqual(await store.getPmRoomById("!pm:x"), { roomId: "!pm:x", userId: "@u1:x", networkId: "net", nick: "bob", nickName: "Bob", reinvitedAt: 5 });
      assert.equal((await store.getChanopStates()).length, 1);
      assert.equal(await store.countMessageLinks(), 5000);
      assert.equal((await store.getMessageLinkByMsgid("net", "m4999"))?.eventId, "$e4999");
      assert.deepEqual((await store.listRecords("position")).map((r) => r.key), ["a", "b"]);
      assert.deepEqual((await store.getPendingEvents()).map((p) => `${p.txnId}/${p.seq}/${String(p.event.type)}`), ["t1/1/a1", "t2/0/b0"]);
      assert.ok(await store.hasTransaction("done"), "a handled transaction is still refused when resent");
      // The copied journal goes on working: finishing t1's last event completes it.
      await store.markEventDone("t1", 1);
      await store.recordTransaction("t3", [{ type: "c0" }]);
      assert.deepEqual((await store.getPendingEvents()).map((p) => p.txnId), ["t2", "t3"]);
    } finally {
      await store.close();
    }
  };

  test("copies everything, prints counts, and a second run or a resumed one changes nothing", async () => {
    const lines: string[] = [];
    const counts = await migrateStore(dir, url, (l) => lines.push(l));
    assert.deepEqual(counts, { rooms: 1, ghosts: 1, puppets: 30, users: 30, pmRooms: 1, chanopStates: 1, records: 2, messageLinks: 5000, transactions: 3, pendingEvents: 2 });
    assert.ok(lines.some((l) => /^messageLinks\s+5000 copied/.test(l)), lines.join("\n"));
    await check();

    // A copy cut short: rows of several tables missing. Running again fills them in; a
    // journalled transaction already there is left as it is (t1 has been handled since).
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query("DELETE FROM message_links WHERE at > (SELECT min(at) + 2000 FROM message_links)");
    await c.query("DELETE FROM puppets WHERE user_id LIKE '@u2%'");
    await c.end();
    await migrateStore(dir, url);
    const store = new PgDataStore(url, 2);
    await store.open();
    assert.equal(await store.countMessageLinks(), 5000);
    assert.equal((await store.getPuppets("net")).length, 30);
    assert.deepEqual((await store.getPendingEvents()).map((p) => p.txnId), ["t2", "t3"], "a transaction already copied (t1, done since) is not copied again");
    await store.close();
  });
});
