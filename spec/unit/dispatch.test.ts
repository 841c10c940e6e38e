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
