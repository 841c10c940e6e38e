/**
 * The appservice listener as the homeserver sees it: token checks, Matrix error bodies,
 * transaction IDs handled once (also across restarts), and acknowledged events that survive
 * a crash of the bridge.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient } from "../harness/matrixClient.js";
import { Stack } from "../harness/stack.js";

describe("appservice transactions", { timeout: 240_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let bob: IrcTestClient;
  let roomId: string;
  let asUrl: string;

  const messageEvent = (body: string) => ({
    type: "m.room.message",
    event_id: `$${randomUUID()}`,
    room_id: roomId,
    sender: alice.userId,
    origin_server_ts: Date.now(),
    content: { msgtype: "m.text", body },
  });

  const putTransaction = (txnId: string, body: unknown, token: string | null = stack.registration.hs_token) =>
    fetch(`${asUrl}/_matrix/app/v1/transactions/${encodeURIComponent(txnId)}`, {
      method: "PUT",
      headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });

  const linesFromAlice = (text: string) => bob.lines.filter((l) => l.nick === "alice[m]" && l.text === text).length;

  before(async () => {
    stack = await Stack.start();
    alice = await stack.matrixUser("alice");
    roomId = await alice.createRoom({ name: "Bridged" });
    stack.mappings = { "#txn": { roomIds: [roomId] } };
    await stack.startBridge();
    asUrl = `http://127.0.0.1:${stack.bridgePort}`;
    bob = await stack.ircUser("bob", ["#txn"]);
  });

  after(async () => {
    await stack?.stop();
  });

  test("a transaction with a wrong or missing token is refused with a Matrix error", async () => {
    const wrong = await putTransaction("t-wrong", { events: [messageEvent("must not pass")] }, "not-the-token");
    assert.equal(wrong.status, 403);
    assert.equal(((await wrong.json()) as { errcode: string }).errcode, "M_FORBIDDEN");
    // As long as the real one, with its last character changed: compared in full, not by length.
    const real = stack.registration.hs_token;
    const sameLength = await putTransaction("t-same-length", { events: [messageEvent("must not pass")] }, `${real.slice(0, -1)}${real.endsWith("x") ? "y" : "x"}`);
    assert.equal(sameLength.status, 403);
    const missing = await putTransaction("t-missing", { events: [] }, null);
    assert.equal(missing.status, 401);
    assert.equal(((await missing.json()) as { errcode: string }).errcode, "M_UNAUTHORIZED");
  });

  test("malformed requests get a 4xx with a Matrix error code, never a stack trace", async () => {
    const notJson = await putTransaction("t-bad-json", "{not json");
    assert.equal(notJson.status, 400);
    const notJsonBody = (await notJson.json()) as { errcode: string; error: string };
    assert.equal(notJsonBody.errcode, "M_NOT_JSON");
    assert.doesNotMatch(notJsonBody.error, /at \w+ \(/);
    const badEvents = await putTransaction("t-bad-events", { events: "nope" });
    assert.equal(badEvents.status, 400);
    assert.equal(((await badEvents.json()) as { errcode: string }).errcode, "M_BAD_JSON");
    const unknown = await fetch(`${asUrl}/_matrix/app/v1/nothing-here`);
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { errcode: string }).errcode, "M_UNRECOGNIZED");
  });

  test("the homeserver's ping is answered", async () => {
    const res = await fetch(`${asUrl}/_matrix/app/v1/ping`, {
      method: "POST",
      headers: { Authorization: `Bearer ${stack.registration.hs_token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ transaction_id: "ping-1" }),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {});
  });

  test("the same transaction ID is delivered once, also after a bridge restart", async () => {
    const txn = { events: [messageEvent("only once please")] };
    assert.equal((await putTransaction("t-dup", txn)).status, 200);
    assert.equal((await putTransaction("t-dup", txn)).status, 200);
    await bob.waitForLine((l) => l.text === "only once please", "the first delivery");

    await stack.bridge.stop("SIGTERM");
    await stack.startBridge();
    assert.equal((await putTransaction("t-dup", txn)).status, 200);
    // A later transaction goes through the same room queue and puppet, so once its line is
    // seen, any duplicate of the earlier one would have been seen before it.
    assert.equal((await putTransaction("t-marker", { events: [messageEvent("marker after duplicates")] })).status, 200);
    await bob.waitForLine((l) => l.text === "marker after duplicates", "the marker");
    assert.equal(linesFromAlice("only once please"), 1);
  });

  test("events acknowledged before a crash are delivered after the restart, in order", async () => {
    // Slow the puppet down so the crash lands while most lines are still queued.
    await stack.bridge.stop("SIGTERM");
    const slow = stack.config();
    slow.networks.testnet.sendRate = { burst: 1, linesPerSecond: 2 };
    stack.bridge.writeConfig(slow);
    await stack.bridge.start();
    const bodies = Array.from({ length: 12 }, (_, i) => `survives crash ${i}`);
    assert.equal((await putTransaction("t-crash", { events: bodies.map(messageEvent) })).status, 200);
    await bob.waitForLine((l) => l.text === bodies[0], "the first line before the crash");
    await stack.bridge.stop("SIGKILL");
    assert.ok(linesFromAlice(bodies[bodies.length - 1]) === 0, "the crash should come before the last line was sent");

    await stack.startBridge();
    await bob.waitForLine((l) => l.text === bodies[bodies.length - 1], "the last line after the restart", 60_000);
    const seen = bob.lines.filter((l) => l.text.startsWith("survives crash ")).map((l) => l.text);
    // At least once, and in order: a line in flight at the moment of the crash may repeat.
    const firstSeen = bodies.map((b) => seen.indexOf(b));
    assert.ok(firstSeen.every((i) => i >= 0), `every line arrives; saw ${JSON.stringify(seen)}`);
    assert.deepEqual([...firstSeen].sort((a, b) => a - b), firstSeen, "lines arrive in order");
    assert.ok(seen.length <= bodies.length + 1, `at most the line in flight repeats; saw ${seen.length}`);
  });
});
