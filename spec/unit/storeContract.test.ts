/**
 * The DataStore contract: the same cases against each engine (NeDB in a temp dir, PostgreSQL
 * in a throwaway cluster), so the bridge can rely on the same behaviour from both. Each case
 * gets a fresh, empty store; "reopen" is a new instance on the same files or database, as
 * after a restart.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { metrics } from "../../src/metrics/metrics.js";
import type { DataStore, MessageLink, PuppetRecord } from "../../src/store/DataStore.js";
import { MessageLinks } from "../../src/store/MessageLinks.js";
import { NedbDataStore } from "../../src/store/NedbDataStore.js";
import { PgDataStore } from "../../src/store/PgDataStore.js";
import { PostgresCluster } from "../harness/postgres.js";

interface Backing {
  /** A new store instance on this backing (not opened). */
  create(): DataStore;
  /** Leaves the journal as a write cut short would: events of `txnId` without it. Returns the open store. */
  tear(txnId: string): Promise<DataStore>;
  dispose(): void;
}

interface Engine {
  name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  backing(): Promise<Backing>;
}

const nedb: Engine = {
  name: "NeDB",
  start: async () => undefined,
  stop: async () => undefined,
  backing: async () => {
    const dir = mkdtempSync(join(tmpdir(), "store-contract-"));
    return {
      create: () => new NedbDataStore(dir),
      tear: async (txnId) => {
        // A power loss mid-append: the transaction's line was cut short (see JournalLog).
        writeFileSync(join(dir, "journal.log"), `{"t":"txn","id":${JSON.stringify(txnId)},"at":1,"events":[{"type":"m.room`);
        const store = new NedbDataStore(dir);
        await store.open();
        return store;
      },
      dispose: () => rmSync(dir, { recursive: true, force: true }),
    };
  },
};

const cluster = { current: null as PostgresCluster | null, databases: 0 };
const postgres: Engine = {
  name: "PostgreSQL",
  start: async () => {
    cluster.current = new PostgresCluster();
    await cluster.current.start();
  },
  stop: async () => cluster.current?.stop(),
  backing: async () => {
    const url = await cluster.current!.createDatabase(`contract${cluster.databases++}`);
    return {
      create: () => new PgDataStore(url, 4),
      tear: async (txnId) => {
        // The database fails the write after some of the events went in: the statement (one
        // transaction) must leave nothing behind.
        const store = new PgDataStore(url, 4);
        await store.open();
        const admin = new pg.Client({ connectionString: url });
        await admin.connect();
        await admin.query(`CREATE FUNCTION fail_third() RETURNS trigger AS $$ BEGIN IF NEW.seq = 2 THEN RAISE EXCEPTION 'disk full'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`);
        await admin.query("CREATE TRIGGER fail_third BEFORE INSERT ON journal_events FOR EACH ROW EXECUTE FUNCTION fail_third()");
        await assert.rejects(store.recordTransaction(txnId, [{ type: "a" }, { type: "b" }, { type: "c" }]), /disk full/);
        await admin.query("DROP TRIGGER fail_third ON journal_events");
        await admin.end();
        return store;
      },
      dispose: () => undefined,
    };
  },
};

const puppet = (userId: string, networkId = "net", extra: Partial<PuppetRecord> = {}): PuppetRecord => ({
  userId, networkId, nick: `${userId.slice(1, 4)}[m]`, username: userId.slice(1, 4), ipv6: null, channels: [], lastActiveAt: 0, password: null, account: null, ...extra,
});
const link = (i: number, at = 1_000_000 + i): MessageLink => ({ roomId: "!r:x", eventId: `$e${i}`, networkId: "net", msgid: `m${i}`, at });

for (const engine of [nedb, postgres]) {
  describe(`DataStore contract: ${engine.name}`, { timeout: 180_000 }, () => {
    const backings: Backing[] = [];
    const open: DataStore[] = [];
    /** A fresh empty store, opened; `reopen()` closes it and opens a new instance on the same data. */
    const fresh = async () => {
      const backing = await engine.backing();
      backings.push(backing);
      let store = backing.create();
      await store.open();
      open.push(store);
      return {
        get store() {
          return store;
        },
        backing,
        reopen: async () => {
          await store.close();
          open.splice(open.indexOf(store), 1);
          store = backing.create();
          await store.open();
          open.push(store);
          return store;
        },
      };
    };

    before(() => engine.start());
    after(async () => {
      for (const s of open) await s.close().catch(() => undefined);
      for (const b of backings) b.dispose();
      await engine.stop();
    });

    test("room links: upsert replaces by (room, network, channel), remove forgets, no key reads as null", async () => {
      const { store } = await fresh();
      await store.upsertRoomLink({ roomId: "!a:x", networkId: "net", channel: "#chan", channelName: "#Chan", origin: "config" });
      await store.upsertRoomLink({ roomId: "!b:x", networkId: "net", channel: "#other", channelName: "#other", origin: "portal", sealedKey: "sealed" });
      await store.upsertRoomLink({ roomId: "!a:x", networkId: "net", channel: "#chan", channelName: "#CHAN", origin: "plumbed", sealedKey: null });
      const links = (await store.getRoomLinks()).sort((x, y) => x.roomId.localeCompare(y.roomId));
      assert.deepEqual(links, [
        { roomId: "!a:x", networkId: "net", channel: "#chan", channelName: "#CHAN", origin: "plumbed", sealedKey: null },
        { roomId: "!b:x", networkId: "net", channel: "#other", channelName: "#other", origin: "portal", sealedKey: "sealed" },
      ]);
      await store.removeRoomLink("!a:x", "net", "#chan");
      assert.deepEqual((await store.getRoomLinks()).map((l) => l.roomId), ["!b:x"]);
    });

    test("ghosts: unknown is null, upsert replaces", async () => {
      const { store } = await fresh();
      assert.equal(await store.getGhost("@irc_net_bob:x"), null);
      await store.upsertGhost({ userId: "@irc_net_bob:x", networkId: "net", nick: "bob", displayName: null });
      await store.upsertGhost({ userId: "@irc_net_bob:x", networkId: "net", nick: "Bob", displayName: "Bob" });
      assert.deepEqual(await store.getGhost("@irc_net_bob:x"), { userId: "@irc_net_bob:x", networkId: "net", nick: "Bob", displayName: "Bob" });
    });

    test("puppets: per user and network, listed per network, every field kept, upsert replaces", async () => {
      const { store } = await fresh();
      await store.upsertPuppet(puppet("@alice:x", "net", { channels: ["#a", "#B"], ipv6: "2001:db8::1", lastActiveAt: 1_700_000_000_000, password: "sealed", account: "acct" }));
      await store.upsertPuppet(puppet("@alice:x", "other"));
      await store.upsertPuppet(puppet("@bob:x"));
      await store.upsertPuppet(puppet("@bob:x", "net", { nick: "bobby" }));
      assert.deepEqual(await store.getPuppet("@alice:x", "net"), puppet("@alice:x", "net", { channels: ["#a", "#B"], ipv6: "2001:db8::1", lastActiveAt: 1_700_000_000_000, password: "sealed", account: "acct" }));
      assert.equal(await store.getPuppet("@carol:x", "net"), null);
      const onNet = (await store.getPuppets("net")).sort((a, b) => a.userId.localeCompare(b.userId));
      assert.deepEqual(onNet.map((p) => [p.userId, p.nick]), [["@alice:x", "ali[m]"], ["@bob:x", "bobby"]]);
      assert.deepEqual((await store.getPuppets("other")).map((p) => p.userId), ["@alice:x"]);
    });

    test("PM rooms are found by user and nick, and by room; a newer room replaces the older", async () => {
      const { store } = await fresh();
      await store.setPmRoom({ roomId: "!a", userId: "@u:x", networkId: "net", nick: "bob", nickName: null });
      assert.deepEqual(await store.getPmRoom("@u:x", "net", "bob"), { roomId: "!a", userId: "@u:x", networkId: "net", nick: "bob", nickName: null, reinvitedAt: null });
      await store.setPmRoom({ roomId: "!b", userId: "@u:x", networkId: "net", nick: "bob", nickName: "Bob", reinvitedAt: 42 });
      assert.equal((await store.getPmRoom("@u:x", "net", "bob"))?.roomId, "!b");
      assert.equal((await store.getPmRoomById("!b"))?.nickName, "Bob");
      assert.equal((await store.getPmRoomById("!b"))?.reinvitedAt, 42);
      assert.equal(await store.getPmRoomById("!a"), null);
      assert.equal(await store.getPmRoom("@u:x", "other", "bob"), null);
    });

    test("users: features and ignored nicks kept, no admin room reads as null, upsert replaces", async () => {
      const { store } = await fresh();
      await store.upsertUser({ userId: "@u:x", adminRoomId: null, features: {} });
      await store.upsertUser({ userId: "@v:x", adminRoomId: "!admin:x", features: { mentions: false }, ignored: { net: ["Spammer"] } });
      await store.upsertUser({ userId: "@u:x", adminRoomId: "!adm:x", features: { mentions: true } });
      const users = (await store.getUsers()).sort((a, b) => a.userId.localeCompare(b.userId));
      assert.deepEqual(users, [
        { userId: "@u:x", adminRoomId: "!adm:x", features: { mentions: true }, ignored: {} },
        { userId: "@v:x", adminRoomId: "!admin:x", features: { mentions: false }, ignored: { net: ["Spammer"] } },
      ]);
    });

    test("chanop states: pairs kept (user IDs with dots), put replaces", async () => {
      const { store } = await fresh();
      await store.putChanopState({ roomId: "!r:x", bridgeLevels: [["@a.b:x", 50]], channelModes: [["net/#c", "+nt"]] });
      await store.putChanopState({ roomId: "!r:x", bridgeLevels: [["@a.b:x", 25], ["@c:x", 1]], channelModes: [] });
      assert.deepEqual(await store.getChanopStates(), [{ roomId: "!r:x", bridgeLevels: [["@a.b:x", 25], ["@c:x", 1]], channelModes: [] }]);
    });

    test("message links: found by event and by msgid; pruned by age and down to a count (ties go together)", async () => {
      const { store } = await fresh();
      await store.putMessageLinks([link(1), link(2), link(3, 1_000_003), link(4, 1_000_003), { ...link(5), at: Date.now() }]);
      assert.deepEqual(await store.getMessageLinkByEvent("$e2"), link(2));
      assert.deepEqual(await store.getMessageLinkByMsgid("net", "m1"), link(1));
      assert.equal(await store.getMessageLinkByMsgid("other", "m1"), null);
      assert.equal(await store.countMessageLinks(), 5);
      // Keep 2: the 3 oldest go, and m4 shares m3's millisecond, so it goes too.
      assert.equal(await store.pruneOldestMessageLinks(2), 4);
      assert.deepEqual((await store.getMessageLinkByEvent("$e5"))?.msgid, "m5");
      assert.equal(await store.pruneOldestMessageLinks(5), 0);
      await store.putMessageLinks([link(6)]);
      assert.equal(await store.pruneMessageLinks(24 * 60 * 60_000), 1, "only the link from 1970 is older than a day");
      assert.equal(await store.countMessageLinks(), 1);
    });

    test("message links are bounded through MessageLinks: the oldest go first, in batches; writes are batched; the count is a metric", async () => {
      const { store } = await fresh();
      const gauge = async () => (await metrics.messageLinks.get()).values[0]?.value;
      let inserts = 0;
      const put = store.putMessageLinks.bind(store);
      store.putMessageLinks = (links) => ((inserts += 1), put(links));
      const links = new MessageLinks(store, { max: 100, batchSize: 25, flushAfterMs: 60_000 });
      await links.load();
      for (let i = 0; i < 250; i += 5) links.add(Array.from({ length: 5 }, (_, j) => link(i + j)));
      await links.flush();
      // The embedded engine's writes are one write call each: links go as they come, no timer.
      const cheap = store.cheapLinkWrites === true;
      assert.equal(inserts, cheap ? 50 : 10, cheap ? "each add written at once" : "250 links in 10 inserts of 25");
      const kept = cheap ? 100 : 90; // 105 → 90 in one go, then 95, 100, 105 → 90, ... ending on 100
      assert.equal(await store.countMessageLinks(), kept, "over 100, the oldest are pruned down to 90 in one go");
      assert.equal(links.size, kept);
      assert.equal(await gauge(), kept);
      assert.equal(await store.getMessageLinkByMsgid("net", "m149"), null, "the oldest are gone");
      assert.equal((await links.byEvent("$e249"))?.msgid, "m249", "the newest are kept");
      links.add([link(250)]);
      assert.equal((await links.byMsgid("net", "m250"))?.eventId, "$e250", "a link waiting to be written is found");
      await links.flush();
      const smaller = new MessageLinks(store, { max: 50 });
      await smaller.load();
      assert.equal(await store.countMessageLinks(), 45, "a lower bound at the next start is applied at once");
      await smaller.pruneOld(24 * 60 * 60_000);
      assert.equal(await store.countMessageLinks(), 0);
      assert.equal(await gauge(), 0);
    });

    test("message links: pruning many goes in batches and leaves the rest", async () => {
      const { store } = await fresh();
      const now = Date.now();
      for (let b = 0; b < 12; b++) await store.putMessageLinks(Array.from({ length: 1000 }, (_, i) => link(b * 1000 + i, b < 11 ? 1000 + b * 1000 + i : now)));
      assert.equal(await store.pruneMessageLinks(60_000), 11_000);
      assert.equal(await store.countMessageLinks(), 1000);
    });

    test("journal: pending events in the order received, events with dots and NULs intact, done marks complete the transaction", async () => {
      const { store } = await fresh();
      const dotted = { type: "m.room.create", content: { "m.federate": false, "m.relates_to": { rel_type: "m.replace" }, body: "nul\u0000here" } };
      assert.equal(await store.hasTransaction("t1"), false);
      await store.recordTransaction("t1", [dotted, { type: "a1" }, { type: "a2" }]);
      await store.recordTransaction("t2", [{ type: "b0" }, { type: "b1" }]);
      await store.recordTransaction("t3", []);
      assert.ok(await store.hasTransaction("t1"));
      assert.ok(await store.hasTransaction("t3"), "an empty transaction is known (and complete)");
      const pending = await store.getPendingEvents();
      assert.deepEqual(pending[0], { txnId: "t1", seq: 0, event: dotted });
      assert.deepEqual(pending.map((p) => `${p.txnId}/${p.seq}`), ["t1/0", "t1/1", "t1/2", "t2/0", "t2/1"]);
      await store.markEventDone("t1", 1);
      await store.markEventDone("t1", 1); // twice: harmless
      assert.deepEqual((await store.getPendingEvents()).map((p) => `${p.txnId}/${p.seq}`), ["t1/0", "t1/2", "t2/0", "t2/1"]);
      // The last two events of t1 finish together.
      await Promise.all([store.markEventDone("t1", 0), store.markEventDone("t1", 2)]);
      assert.deepEqual((await store.getPendingEvents()).map((p) => p.txnId), ["t2", "t2"]);
      assert.ok(await store.hasTransaction("t1"), "a completed transaction is still known (duplicates are refused)");
      // Completed transactions (t1, t3) go when pruned; t2 is pending and stays.
      assert.equal(await store.pruneTransactions(60_000), 0, "not old enough yet");
      assert.equal(await store.pruneTransactions(-60_000), 2);
      assert.equal(await store.hasTransaction("t1"), false);
      assert.ok(await store.hasTransaction("t2"));
      assert.equal((await store.getPendingEvents()).length, 2);
    });

    test("journal: a write cut short leaves no trace, so the homeserver's resend is journalled", async () => {
      const backing = await engine.backing();
      backings.push(backing);
      const store = await backing.tear("torn");
      open.push(store);
      assert.deepEqual(await store.getPendingEvents(), [], "nothing of the torn write (never acknowledged)");
      assert.equal(await store.hasTransaction("torn"), false);
      await store.recordTransaction("torn", [{ type: "m.room.message", content: { body: "again" } }]);
      assert.deepEqual((await store.getPendingEvents()).map((p) => p.event.content), [{ body: "again" }]);
    });

    test("keyed records: put replaces, list is per kind and oldest first, delete forgets, values with dots survive", async () => {
      const { store } = await fresh();
      await store.putRecord("linkRequest", "a", { roomId: "!r:x", "m.relates_to": 1 });
      await store.putRecord("linkRequest", "b", { n: 2 });
      await store.putRecord("position", "a", { at: 5 });
      await store.putRecord("linkRequest", "a", { roomId: "!s:x", "m.relates_to": 1 });
      const a = await store.getRecord<{ roomId: string }>("linkRequest", "a");
      assert.deepEqual(a?.value, { roomId: "!s:x", "m.relates_to": 1 });
      assert.equal(typeof a?.updatedAt, "number");
      assert.deepEqual((await store.listRecords("linkRequest")).map((r) => r.key), ["b", "a"]);
      assert.equal(await store.deleteRecord("linkRequest", "b"), true);
      assert.equal(await store.deleteRecord("linkRequest", "b"), false);
      assert.equal(await store.getRecord("linkRequest", "b"), null);
      assert.deepEqual((await store.listRecords("position")).map((r) => r.value), [{ at: 5 }]);
      assert.deepEqual(await store.listRecords("none"), []);
    });

    test("a restart (close, open a new instance) keeps everything, pending events included", async () => {
      const s = await fresh();
      await s.store.upsertRoomLink({ roomId: "!a:x", networkId: "net", channel: "#c", channelName: "#c", origin: "portal" });
      await s.store.upsertGhost({ userId: "@g:x", networkId: "net", nick: "g", displayName: "g" });
      await s.store.upsertPuppet(puppet("@alice:x", "net", { channels: ["#c"] }));
      await s.store.upsertUser({ userId: "@alice:x", adminRoomId: "!adm:x", features: { mentions: true } });
      await s.store.setPmRoom({ roomId: "!pm:x", userId: "@alice:x", networkId: "net", nick: "g", nickName: "G" });
      await s.store.putChanopState({ roomId: "!a:x", bridgeLevels: [["@g:x", 50]], channelModes: [] });
      await s.store.putMessageLinks([link(1)]);
      await s.store.recordTransaction("t1", [{ type: "x" }, { type: "y" }]);
      await s.store.markEventDone("t1", 0);
      await s.store.putRecord("k", "1", { v: 1 });
      const store = await s.reopen();
      assert.equal((await store.getRoomLinks()).length, 1);
      assert.equal((await store.getGhost("@g:x"))?.nick, "g");
      assert.deepEqual((await store.getPuppet("@alice:x", "net"))?.channels, ["#c"]);
      assert.equal((await store.getUsers())[0].adminRoomId, "!adm:x");
      assert.equal((await store.getPmRoomById("!pm:x"))?.nickName, "G");
      assert.equal((await store.getChanopStates()).length, 1);
      assert.deepEqual(await store.getMessageLinkByEvent("$e1"), link(1));
      assert.deepEqual(await store.getPendingEvents(), [{ txnId: "t1", seq: 1, event: { type: "y" } }]);
      assert.ok(await store.hasTransaction("t1"));
      assert.deepEqual((await store.getRecord("k", "1"))?.value, { v: 1 });
    });
  });
}
