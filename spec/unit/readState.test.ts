/**
 * Reading room state never joins the room: the library's Intent.getStateEvent joins first when
 * its membership cache does not say "join", which brought a kicked bot back into its room.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Intent } from "matrix-appservice-bridge";
import { readStateEvent } from "../../src/matrix/readState.js";

function intent(answer: (roomId: string, type: string, key: string) => Promise<unknown>) {
  const calls: string[] = [];
  const fake = {
    join: async () => void calls.push("join"),
    getStateEvent: async () => void calls.push("getStateEvent (joins first)"),
    matrixClient: {
      getRoomStateEvent: (roomId: string, type: string, key: string) => {
        calls.push(`read ${roomId} ${type} ${JSON.stringify(key)}`);
        return answer(roomId, type, key);
      },
    },
  };
  return { intent: fake as unknown as Intent, calls };
}

test("the content is read with the client alone: no join, not even through the library's read", async () => {
  const { intent: bot, calls } = intent(async () => ({ users_default: 0 }));
  assert.deepEqual(await readStateEvent(bot, "!r:x", "m.room.power_levels"), { users_default: 0 });
  assert.deepEqual(calls, ['read !r:x m.room.power_levels ""']);
});

test("not in the room (403), no such event (404) or a dead homeserver: null, and still no join", async () => {
  for (const err of [Object.assign(new Error("not in room"), { errcode: "M_FORBIDDEN" }), Object.assign(new Error("none"), { errcode: "M_NOT_FOUND" }), new Error("ECONNREFUSED")]) {
    const { intent: bot, calls } = intent(async () => Promise.reject(err));
    assert.equal(await readStateEvent(bot, "!r:x", "m.room.topic"), null);
    assert.deepEqual(calls, ['read !r:x m.room.topic ""']);
  }
});
