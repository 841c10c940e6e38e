/**
 * The embedded engine's message links in messages.log (see src/store/LinkLog.ts): written as
 * they come with one kept-open file, read back after a crash (no close), a torn last line
 * skipped, pruning rewriting the file, and an older version's messages.db adopted.
 */
import assert from "node:assert/strict";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import type Nedb from "@seald-io/nedb";
import type { MessageLink } from "../../src/store/DataStore.js";
import { NedbDataStore } from "../../src/store/NedbDataStore.js";

const Datastore = createRequire(import.meta.url)("@seald-io/nedb") as typeof Nedb.default;
const dirs: string[] = [];
const dir = () => {
  const d = mkdtempSync(join(tmpdir(), "link-log-"));
  dirs.push(d);
  return d;
};
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const link = (i: number, at = 1_000_000 + i): MessageLink => ({ roomId: "!r:x", eventId: `$e${i}`, networkId: "net", msgid: `m${i}`, at });
const lines = (d: string) => readFileSync(join(d, "messages.log"), "utf8").split("\n").filter((l) => l !== "");

test("links are appended to messages.log as they are put, and read back after a crash; a torn last line is skipped", async () => {
  const d = dir();
  const store = new NedbDataStore(d);
  await store.open();
  await store.putMessageLinks([link(1), link(2)]);
  await store.putMessageLinks([link(3)]);
  assert.equal(lines(d).length, 3, "one line per link, written at once");
  // A crash: no close; the last write was cut short.
  appendFileSync(join(d, "messages.log"), '["!r:x","$e4","net",');
  const again = new NedbDataStore(d);
  await again.open();
  assert.deepEqual(await again.getMessageLinkByEvent("$e3"), link(3));
  assert.deepEqual(await again.getMessageLinkByMsgid("net", "m1"), link(1));
  assert.equal(await again.getMessageLinkByEvent("$e4"), null);
  assert.equal(await again.countMessageLinks(), 3);
  assert.equal(lines(d).length, 3, "the open rewrote the file without the torn line");
  await again.putMessageLinks([link(5)]);
  assert.deepEqual(await again.getMessageLinkByMsgid("net", "m5"), link(5));
  await again.close();
  await store.close();
});

test("pruning rewrites messages.log with only the links kept", async () => {
  const d = dir();
  const store = new NedbDataStore(d);
  await store.open();
  await store.putMessageLinks(Array.from({ length: 10 }, (_, i) => link(i)));
  assert.equal(await store.pruneOldestMessageLinks(4), 6);
  assert.equal(lines(d).length, 4);
  await store.putMessageLinks([{ ...link(20), at: Date.now() }]);
  assert.equal(await store.pruneMessageLinks(60_000), 4);
  assert.deepEqual(lines(d), [JSON.stringify(["!r:x", "$e20", "net", "m20", (await store.getMessageLinkByEvent("$e20"))!.at])]);
  await store.close();
  const again = new NedbDataStore(d);
  await again.open();
  assert.equal(await again.countMessageLinks(), 1);
  await again.close();
});

test("an older version's messages.db (NeDB) is adopted at open and removed", async () => {
  const d = dir();
  const old = new Datastore<MessageLink>({ filename: join(d, "messages.db") });
  await old.loadDatabaseAsync();
  await old.insertAsync([link(1), link(2)]);
  const store = new NedbDataStore(d);
  await store.open();
  assert.deepEqual(await store.getMessageLinkByEvent("$e2"), link(2));
  assert.equal(existsSync(join(d, "messages.db")), false);
  assert.equal(lines(d).length, 2);
  await store.close();
});

test("a msgid linked in two rooms keeps its lookup while one of its links is left after a prune", async () => {
  const { LinkLog } = await import("../../src/store/LinkLog.js");
  const d = dir();
  const log = new LinkLog(d);
  log.open();
  // One channel bridged to two rooms: the same msgid, stamped a moment apart.
  log.put([{ roomId: "!a:x", eventId: "$a", networkId: "net", msgid: "m", at: 100 }]);
  log.put([{ roomId: "!b:x", eventId: "$b", networkId: "net", msgid: "m", at: 101 }]);
  assert.equal(log.removeUpTo(100, true), 1);
  assert.equal(log.byMsgid("net", "m")?.eventId, "$b");
  log.close();
});
