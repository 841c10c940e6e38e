/**
 * The appservice port under hostile input, with the right homeserver token: every malformed
 * request gets a prompt 4xx with a JSON Matrix error, never a 5xx or silence; a stalled body
 * is cut off by a timeout; well-formed transactions keep being bridged throughout. And a user
 * query registers a ghost only for a nick that is really on IRC.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { IrcTestClient } from "../harness/ircClient.js";
import { MatrixTestClient } from "../harness/matrixClient.js";
import { buildRequest, rawRequest, type RawResponse } from "../harness/rawHttp.js";
import { Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";
import { buildCases } from "./hostileAppserviceCases.js";

const TOTAL_CASES = 2_000;
/** "Promptly", with room for a machine busy with other test runs. */
const ANSWER_WITHIN_MS = 5_000;
const CONCURRENCY = 4;

describe("hostile appservice requests", { timeout: 600_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let admin: MatrixTestClient;
  let bob: IrcTestClient;
  let roomId: string;
  let asUrl: string;

  const messageEvent = (body: string, content: Record<string, unknown> = { msgtype: "m.text", body }) => ({
    type: "m.room.message",
    event_id: `$${randomUUID()}`,
    room_id: roomId,
    sender: alice.userId,
    origin_server_ts: Date.now(),
    content,
  });

  const putTransaction = (txnId: string, body: unknown) =>
    fetch(`${asUrl}/_matrix/app/v1/transactions/${encodeURIComponent(txnId)}`, {
      method: "PUT",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${stack.registration.hs_token}` },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });

  /** What is wrong with an answer, or null when it is a 4xx with a JSON Matrix error. */
  const problem = (res: RawResponse): string | null => {
    if (res.status === null) return res.closed ? "closed without an answer" : "no answer";
    if (res.status >= 500) return `${res.status}`;
    if (res.status < 400) return `${res.status} (not a 4xx)`;
    try {
      const body = JSON.parse(res.body) as { errcode?: unknown; error?: unknown };
      if (typeof body.errcode !== "string" || !body.errcode.startsWith("M_") || typeof body.error !== "string") return `${res.status} without {errcode, error}: ${res.body.slice(0, 80)}`;
    } catch {
      return `${res.status} with a body that is not JSON: ${JSON.stringify(res.body.slice(0, 80))}`;
    }
    return null;
  };

  before(async () => {
    stack = await Stack.start();
    alice = await stack.matrixUser("alice");
    const boss = await stack.synapse.registerUser("admin", "password", true);
    admin = new MatrixTestClient(stack.synapse.url, boss.userId, boss.accessToken);
    roomId = await alice.createRoom({ name: "Hostile" });
    stack.mappings = { "#hostile": { roomIds: [roomId] } };
    await stack.startBridge();
    asUrl = `http://127.0.0.1:${stack.bridgePort}`;
    bob = await stack.ircUser("bob", ["#hostile"]);
  });

  after(async () => {
    await stack?.stop();
  });

  test(`${TOTAL_CASES} malformed requests each get a prompt 4xx with a Matrix error code; transactions between them are bridged`, async (t) => {
    const cases = buildCases({ token: stack.registration.hs_token, roomId, sender: alice.userId }, TOTAL_CASES);
    const failures: string[] = [];
    const counts = { fiveXX: 0, noAnswer: 0, other: 0, ok: 0 };
    let slowest = 0;
    const answers = new Map<string, number>();
    const canaries: string[] = [];
    let next = 0;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= cases.length) return;
        if (i % 250 === 0) {
          // A well-formed transaction among the hostile ones must still be bridged.
          const text = `canary ${canaries.length}`;
          canaries.push(text);
          const res = await putTransaction(`canary-${i}`, { events: [messageEvent(text)] });
          assert.equal(res.status, 200, `the canary after case ${i} is accepted`);
        }
        const res = await rawRequest(stack.bridgePort, cases[i].bytes, { timeoutMs: ANSWER_WITHIN_MS });
        slowest = Math.max(slowest, res.ms);
        const wrong = problem(res);
        if (!wrong) {
          const key = `${res.status} ${(JSON.parse(res.body) as { errcode: string }).errcode}`;
          answers.set(key, (answers.get(key) ?? 0) + 1);
        }
        if (!wrong) counts.ok++;
        else if (res.status === null) counts.noAnswer++;
        else if (res.status >= 500) counts.fiveXX++;
        else counts.other++;
        if (wrong) failures.push(`#${i} ${cases[i].name}: ${wrong}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const summary = `${cases.length} requests: ${counts.ok} 4xx with a Matrix error, ${counts.fiveXX} 5xx, ${counts.noAnswer} no answer within ${ANSWER_WITHIN_MS} ms, ${counts.other} other; slowest ${slowest} ms`;
    t.diagnostic(summary);
    t.diagnostic(`answers: ${[...answers].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${v} × ${k}`).join(", ")}`);
    console.log(summary);
    if (failures.length > 0) console.log(failures.join("\n"));
    assert.ok(stack.bridge.running, "the bridge process is alive");
    assert.deepEqual(failures.slice(0, 40), [], summary);

    for (const text of canaries) await bob.waitForLine((l) => l.text === text, text, 60_000);
    const seen = bob.lines.filter((l) => l.text.startsWith("canary ")).map((l) => l.text);
    assert.deepEqual(seen, canaries, "each canary once, in order");
    assert.equal(bob.lines.filter((l) => l.text === "must never reach IRC").length, 0, "nothing of a refused transaction reached IRC");

    await alice.sendText(roomId, "after the storm");
    await bob.waitForLine((l) => l.nick === "alice[m]" && l.text === "after the storm", "a message sent through Synapse", 60_000);
  });

  test("events with odd content inside a well-formed transaction are accepted and hold nothing up", async () => {
    // Only the envelope is the homeserver's to guarantee; content comes from any user on any
    // server, so odd content is accepted (200) and each handler copes with it on its own.
    const odd = [
      { msgtype: "m.text", body: 42 },
      { msgtype: "m.text", body: { nested: true } },
      { msgtype: "m.text", body: null },
      { msgtype: 7, body: "odd msgtype" },
      { msgtype: "m.text", body: "odd html", format: "org.matrix.custom.html", formatted_body: ["x"] },
      { msgtype: "m.text", body: "odd relation", "m.relates_to": "nope" },
      { msgtype: "m.text", body: "odd reply", "m.relates_to": { "m.in_reply_to": 5 } },
      { msgtype: "m.text", body: "odd edit", "m.relates_to": { rel_type: "m.replace", event_id: {} }, "m.new_content": "x" },
      { msgtype: "m.emote" },
      {},
    ];
    const events = odd.map((content, i) => messageEvent(`odd ${i}`, content));
    const member = { type: "m.room.member", event_id: `$${randomUUID()}`, room_id: roomId, sender: alice.userId, state_key: alice.userId, origin_server_ts: Date.now(), content: { membership: 5, displayname: {} }, unsigned: { prev_content: "x" } };
    const topic = { type: "m.room.topic", event_id: `$${randomUUID()}`, room_id: roomId, sender: alice.userId, state_key: "", origin_server_ts: Date.now(), content: { topic: ["a"] } };
    const res = await putTransaction(`odd-${randomUUID()}`, { events: [...events, member, topic], "de.sorunome.msc2409.ephemeral": [{ type: "m.typing", room_id: roomId, content: { user_ids: "x" } }] });
    assert.equal(res.status, 200);
    assert.equal((await putTransaction(`after-odd-${randomUUID()}`, { events: [messageEvent("after the odd ones")] })).status, 200);
    await bob.waitForLine((l) => l.text === "after the odd ones", "the message after the odd events", 60_000);
    assert.ok(stack.bridge.running, "the bridge process is alive");
  });

  test("a body that never finishes is answered or cut off by a timeout, and other requests go on meanwhile", async () => {
    const stalled = buildRequest(
      "PUT",
      `/_matrix/app/v1/transactions/slow-${randomUUID()}`,
      { Authorization: `Bearer ${stack.registration.hs_token}`, "Content-Type": "application/json", "Content-Length": "1000" },
      '{"events": [',
    );
    const slow = rawRequest(stack.bridgePort, stalled, { timeoutMs: 60_000 });
    const res = await putTransaction(`during-stall-${randomUUID()}`, { events: [messageEvent("during the stall")] });
    assert.equal(res.status, 200);
    const answer = await slow;
    assert.ok(answer.status !== null || answer.closed, `the stalled request is answered or closed (after ${answer.ms} ms)`);
    if (answer.status !== null) assert.equal(problem(answer), null);
    assert.ok(answer.ms < 40_000, `cut off within 40 s, took ${answer.ms} ms`);
    await bob.waitForLine((l) => l.text === "during the stall", "the message sent during the stall", 60_000);
  });

  test("a user query registers a ghost only for a nick that is on IRC", async () => {
    const carol = await stack.ircUser("carol"); // on IRC, in no channel the bridge sees
    void carol;
    const userExists = async (userId: string) => {
      try {
        await admin.request("GET", `/_synapse/admin/v2/users/${encodeURIComponent(userId)}`);
        return true;
      } catch (err) {
        if (/: 404 /.test((err as Error).message)) return false;
        throw err;
      }
    };
    const query = (userId: string) =>
      fetch(`${asUrl}/_matrix/app/v1/users/${encodeURIComponent(userId)}`, { headers: { Authorization: `Bearer ${stack.registration.hs_token}` }, signal: AbortSignal.timeout(60_000) });

    // As Synapse asks: the homeserver's own question, over the appservice API.
    const absent = stack.ghostId("nosuchnick");
    const no = await query(absent);
    assert.equal(no.status, 404);
    assert.equal(((await no.json()) as { errcode: string }).errcode, "M_NOT_FOUND");
    assert.equal(await userExists(absent), false, "no ghost for a nick that is not on IRC");
    const yes = await query(stack.ghostId("carol"));
    assert.equal(yes.status, 200);
    assert.equal(await userExists(stack.ghostId("carol")), true, "a nick found by WHOIS gets its ghost");
    const inChannel = await query(stack.ghostId("bob"));
    assert.equal(inChannel.status, 200, "a nick in a bridged channel exists");

    // Through Synapse: a membership event naming a ghost makes Synapse query the bridge first
    // (one room's events are handled in order, so once the second ghost exists the first was asked).
    const other = await alice.createRoom({ name: "Unbridged" });
    const absentToo = stack.ghostId("nosuchnick2");
    await alice.request("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(other)}/ban`, { user_id: absentToo, reason: "test" });
    const dave = await stack.ircUser("dave");
    void dave;
    await alice.request("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(other)}/ban`, { user_id: stack.ghostId("dave"), reason: "test" });
    await waitFor("dave's ghost to be registered", () => userExists(stack.ghostId("dave")), 60_000);
    assert.equal(await userExists(absentToo), false, "no ghost for a nick that is not on IRC, asked by Synapse");
  });
});
