import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { checkTxnId, deeperThan, MAX_JSON_DEPTH, readTransaction, surelyShallow } from "../../src/matrix/transactionBody.js";

const event = (extra: Record<string, unknown> = {}) => ({
  type: "m.room.message",
  event_id: "$e",
  room_id: "!r:x",
  sender: "@a:x",
  origin_server_ts: 1,
  content: { body: "hi" },
  ...extra,
});

const refused = (body: unknown) => "errcode" in readTransaction(body);

describe("transaction bodies", () => {
  test("a well-formed transaction gives its events and ephemeral events", () => {
    const typing = { type: "m.typing", room_id: "!r:x", content: { user_ids: [] } };
    assert.deepEqual(readTransaction({ events: [event()], "de.sorunome.msc2409.ephemeral": [typing] }), { events: [event()], ephemeral: [typing] });
    assert.deepEqual(readTransaction({ events: [], ephemeral: [typing] }), { events: [], ephemeral: [typing] });
    assert.deepEqual(readTransaction({ events: [] }), { events: [], ephemeral: [] });
  });

  test("odd content is the handlers' business, not a reason to refuse", () => {
    assert.ok(!refused({ events: [event({ content: { body: 42, msgtype: null, "m.relates_to": "x" } })] }));
    assert.ok(!refused({ events: [event({ type: "m.room.member", state_key: "@b:x", content: { membership: 5 } })] }));
  });

  test("bodies that are not a transaction are refused with M_BAD_JSON", () => {
    for (const body of [null, [], "x", 42, {}, { events: {} }, { events: "x" }, { events: null }]) {
      assert.deepEqual((readTransaction(body) as { errcode: string }).errcode, "M_BAD_JSON", JSON.stringify(body));
    }
  });

  test("an event with a broken envelope refuses the whole transaction", () => {
    for (const bad of [1, "x", null, [], event({ type: 1 }), event({ room_id: null }), event({ sender: {} }), event({ event_id: [] }), event({ type: "" }), event({ content: "x" }), event({ content: [] }), event({ content: undefined }), event({ state_key: 1 }), event({ unsigned: "x" })]) {
      assert.ok(refused({ events: [event(), bad] }), JSON.stringify(bad));
    }
  });

  test("ephemeral events must be a list of typed events", () => {
    for (const value of [{}, "x", 1, null, [1], [{ content: {} }], [{ type: "m.typing", content: "x" }]]) {
      assert.ok(refused({ events: [], "de.sorunome.msc2409.ephemeral": value }), JSON.stringify(value));
      assert.ok(refused({ events: [], ephemeral: value }), JSON.stringify(value));
    }
  });

  test("nesting deeper than the limit is refused, without recursion", () => {
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = { a: deep };
    assert.ok(deeperThan(deep, MAX_JSON_DEPTH));
    assert.ok(refused({ events: [event({ content: deep })] }));
    let fine: unknown = 1;
    for (let i = 0; i < 100; i++) fine = [fine];
    assert.ok(!deeperThan(fine, MAX_JSON_DEPTH));
    assert.ok(!refused({ events: [event({ content: { a: fine } })] }));
  });

  test("text with few brackets is known shallow without a walk; text that may be deep is walked", () => {
    const nested = (depth: number) => "[".repeat(depth) + "1" + "]".repeat(depth);
    assert.ok(surelyShallow(Buffer.from(JSON.stringify({ events: [event()] })), MAX_JSON_DEPTH));
    assert.ok(surelyShallow(Buffer.from(nested(MAX_JSON_DEPTH)), MAX_JSON_DEPTH));
    assert.ok(!surelyShallow(Buffer.from(nested(MAX_JSON_DEPTH + 1)), MAX_JSON_DEPTH));
    // Many brackets, shallow: not known shallow from the text, so readTransaction walks it and takes it.
    const wide = JSON.stringify({ events: [event({ content: { list: Array.from({ length: 600 }, () => ({})) } })] });
    assert.ok(!surelyShallow(Buffer.from(wide), MAX_JSON_DEPTH));
    assert.ok(!refused(JSON.parse(wide)));
    // Brackets inside strings count too (the bound stays an upper bound on the depth).
    assert.ok(!surelyShallow(Buffer.from(JSON.stringify({ s: "{".repeat(MAX_JSON_DEPTH + 1) })), MAX_JSON_DEPTH));
    // Deep JSON is refused when its text was not known shallow.
    const deepText = `{"events":[{"type":"t","event_id":"$e","room_id":"!r:x","sender":"@a:x","content":{"a":${"[".repeat(MAX_JSON_DEPTH + 5)}${"]".repeat(MAX_JSON_DEPTH + 5)}}}]}`;
    assert.ok(!surelyShallow(Buffer.from(deepText), MAX_JSON_DEPTH));
    assert.equal((readTransaction(JSON.parse(deepText)) as { error: string }).error, `JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  });

  test("transaction IDs", () => {
    for (const id of ["1", "42", "t-crash", "canary-250", "a.b~c_d=e+f:g@h"]) assert.equal(checkTxnId(id), null, id);
    for (const id of [undefined, "", ".", "..", "a/b", "a b", "a\r\nb", "\u0000", "é", "a".repeat(201), "<x>"]) assert.ok(checkTxnId(id), String(id));
  });
});
