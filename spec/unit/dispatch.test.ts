import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DurableAppService, KeepInJournal, type MatrixEvent } from "../../src/matrix/DurableAppService.js";
import type { DataStore } from "../../src/store/DataStore.js";

/** Just the journal calls dispatch makes, recorded. */
function fakeStore(done: string[]): DataStore {
  return { markEventDone: async (txnId: string, seq: number) => void done.push(`${txnId}/${seq}`) } as unknown as DataStore;
}

function service(sink: (event: MatrixEvent) => Promise<void>, done: string[]) {
  const svc = new DurableAppService("hs-token", fakeStore(done), { sink, aliasQuery: async () => false, userQuery: async () => false, journalCopy: (e) => e });
  return svc as unknown as { dispatch(txnId: string, seq: number, event: MatrixEvent): void; drain(ms: number): Promise<void> };
}

describe("dispatching journalled events", () => {
  test("a live copy and a replayed copy of one event are handled once; both journal entries end", async () => {
    const handled: string[] = [];
    const done: string[] = [];
    const svc = service(async (e) => void handled.push(String(e.event_id)), done);
    const event = { type: "m.room.message", event_id: "$one", room_id: "!r", sender: "@a:x", content: {} };
    svc.dispatch("replayed", 0, event);
    svc.dispatch("live", 3, event);
    await svc.drain(1_000);
    assert.deepEqual(handled, ["$one"]);
    assert.deepEqual(done.sort(), ["live/3", "replayed/0"]);
  });

  test("an event its handler hands back (the bridge is stopping) stays in the journal", async () => {
    const done: string[] = [];
    const svc = service(async () => {
      throw new KeepInJournal("stopping");
    }, done);
    svc.dispatch("t", 0, { type: "m.room.message", event_id: "$two", room_id: "!r", sender: "@a:x", content: {} });
    await svc.drain(1_000);
    assert.deepEqual(done, []);
  });
});

describe("events of the bridge's own users", () => {
  test("are neither journalled nor handled; only membership and power levels feed the library's caches; the others keep their order and seqs", async () => {
    const journalled: unknown[][] = [];
    const done: string[] = [];
    const store = {
      hasTransaction: async () => false,
      recordTransaction: async (_txnId: string, events: unknown[]) => void journalled.push(events),
      markEventDone: async (txnId: string, seq: number) => void done.push(`${txnId}/${seq}`),
    } as unknown as DataStore;
    const handled: string[] = [];
    const svc = new DurableAppService("hs-token", store, {
      sink: async (e) => void handled.push(String(e.event_id)),
      aliasQuery: async () => false,
      userQuery: async () => false,
      journalCopy: (e) => e,
      ignored: (e) => String(e.sender).startsWith("@irc_"),
    });
    const cached: string[] = [];
    svc.on("event", (e: MatrixEvent) => cached.push(String(e.event_id)));
    const ev = (id: string, sender: string, type = "m.room.message") => ({ type, event_id: id, room_id: "!r", sender, content: { body: id }, ...(type === "m.room.message" ? {} : { state_key: sender }) });
    const body = { events: [ev("$a", "@alice:x"), ev("$echo", "@irc_bob:x", "m.room.member"), ev("$b", "@alice:x"), ev("$pl", "@alice:x", "m.room.power_levels")] };
    let status = 0;
    const answer = { ok: () => void (status = 200), fail: (s: number) => void (status = s) };
    await svc.handleTransaction("t1", body, answer);
    await svc.drain(1_000);
    assert.equal(status, 200);
    assert.deepEqual(journalled, [[body.events[0], body.events[2], body.events[3]]]);
    assert.deepEqual(handled, ["$a", "$b", "$pl"]);
    assert.deepEqual(done, ["t1/0", "t1/1", "t1/2"]);
    assert.deepEqual(cached, ["$echo", "$pl"]);
    // A transaction of echoes only is not written at all.
    status = 0;
    await svc.handleTransaction("t2", { events: [ev("$echo2", "@irc_bob:x")] }, answer);
    assert.equal(status, 200);
    assert.equal(journalled.length, 1);
    assert.deepEqual(cached, ["$echo", "$pl"]);
  });
});
