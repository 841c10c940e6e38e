/**
 * The bridge on PostgreSQL (store.engine: postgres), with a throwaway cluster per stack:
 * - kill -9 of the bridge during a 200-message burst: every message the homeserver had an
 *   answer 200 for reaches IRC (at least once), in order, from the journal alone; while the
 *   database is down nothing is acknowledged, and the homeserver's retry goes through after;
 * - `migrate-store` of a store an NeDB bridge made (nick, PM room, message links), then the
 *   bridge runs on PostgreSQL with the same.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { renameSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { MAIN_JS } from "../harness/bridgeProcess.js";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient, TimelineEvent } from "../harness/matrixClient.js";
import { PostgresCluster } from "../harness/postgres.js";
import { Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";

const BURST = 200;

describe("kill -9 on PostgreSQL", { timeout: 300_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let bob: IrcTestClient;
  let roomId: string;

  const message = (body: string) => ({
    type: "m.room.message", event_id: `$${randomUUID()}`, room_id: roomId, sender: alice.userId, origin_server_ts: Date.now(), content: { msgtype: "m.text", body },
  });
  /** As the homeserver does: PUT the transaction; true when the bridge answered 200. */
  const put = async (txnId: string, events: unknown[]) => {
    try {
      const res = await fetch(`http://127.0.0.1:${stack.bridgePort}/_matrix/app/v1/transactions/${txnId}`, {
        method: "PUT", headers: { Authorization: `Bearer ${stack.registration.hs_token}`, "Content-Type": "application/json" }, body: JSON.stringify({ events }),
      });
      return res.status === 200;
    } catch {
      return false; // the bridge is gone: not acknowledged
    }
  };

  before(async () => {
    // fsync on: this is a test of what is durable.
    stack = await Stack.start({ store: "postgres", postgresFsync: true });
    // Paced, so most of the burst is still queued when the bridge dies.
    stack.networkOverrides = { sendRate: { burst: 10, linesPerSecond: 20 } };
    alice = await stack.matrixUser("alice");
    roomId = await alice.createRoom({ name: "Burst" });
    stack.mappings = { "#burst": { roomIds: [roomId] } };
    bob = await stack.ircUser("bob", ["#burst"]);
    await stack.startBridge();
    assert.ok(await put("warmup", [message("warm up")]));
    await bob.waitForLine((l) => l.text === "warm up" && l.nick === "alice[m]", "alice's puppet online", 60_000);
  });

  after(async () => {
    await stack?.stop();
  });

  test("every acknowledged message of a 200-message burst reaches IRC after kill -9, in order", async () => {
    const bodies = Array.from({ length: BURST }, (_, i) => `burst ${i}`);
    const acked: number[] = [];
    let killed: Promise<unknown> | null = null;
    // One message per transaction, as fast as the bridge answers; kill -9 once half are in.
    for (let i = 0; i < BURST; i++) {
      if (await put(`burst-${i}`, [message(bodies[i])])) acked.push(i);
      if (acked.length === BURST / 2 && !killed) killed = stack.bridge.stop("SIGKILL");
    }
    await killed;
    const seenAtKill = bob.lines.filter((l) => l.text.startsWith("burst ")).length;
    assert.equal(acked.length, BURST / 2, "nothing is acknowledged after the kill");
    assert.ok(seenAtKill < acked.length, `the kill came with lines still queued (${seenAtKill} of ${acked.length} on IRC)`);

    await stack.startBridge();
    const seen = () => bob.lines.filter((l) => l.text.startsWith("burst ")).map((l) => l.text);
    // From the journal alone: nothing is resent yet.
    await waitFor("every acknowledged line on IRC", () => acked.every((i) => seen().includes(bodies[i])), 120_000, 250);
    // Then the homeserver resends what it never had a 200 for (the same transaction IDs).
    for (let i = 0; i < BURST; i++) if (!acked.includes(i)) assert.ok(await put(`burst-${i}`, [message(bodies[i])]), `resend ${i}`);
    await waitFor("the whole burst on IRC", () => bodies.every((b) => seen().includes(b)), 120_000, 250);
    const firstSeen = bodies.map((b) => seen().indexOf(b));
    assert.deepEqual([...firstSeen].sort((a, b) => a - b), firstSeen, "lines arrive in order");
    assert.ok(bob.lines.filter((l) => l.text.startsWith("burst ")).every((l) => l.nick === "alice[m]"));
    // At least once: only lines in flight at the kill (sent, not yet marked done) may repeat.
    assert.ok(seen().length <= BURST + 3, `few repeats; saw ${seen().length - BURST}`);
  });

  test("while PostgreSQL is down nothing is acknowledged (500, the homeserver retries); once it is back the retry goes through", async () => {
    stack.postgres!.stopServer();
    try {
      assert.equal(await put("outage-1", [message("during the outage")]), false, "no 200 without the journal");
    } finally {
      await stack.postgres!.start();
    }
    assert.ok(stack.bridge.running, "the bridge rode out the outage");
    // The homeserver's retry of the same transaction, once the database answers again.
    await waitFor("the retry acknowledged", () => put("outage-1", [message("during the outage")]), 60_000, 500);
    await bob.waitForLine((l) => l.text === "during the outage" && l.nick === "alice[m]", "the retried line", 60_000);
  });
});

describe("migrate-store from an NeDB bridge's store", { timeout: 300_000 }, () => {
  let stack: Stack;
  let target: PostgresCluster;
  let alice: MatrixTestClient;
  let carol: IrcTestClient;
  let roomId: string;
  let adminRoom: string;
  const body = (e: TimelineEvent) => String(e.content.body);

  before(async () => {
    stack = await Stack.start({ store: "nedb" });
    target = new PostgresCluster();
    await target.start();
    alice = await stack.matrixUser("alice");
    roomId = await alice.createRoom({ name: "Migrate", preset: "public_chat" });
    stack.mappings = { "#migrate": { roomIds: [roomId] } };
    carol = await stack.ircUser("carol", ["#migrate"]);
    await stack.startBridge();
  });

  after(async () => {
    await stack?.stop();
    await target?.stop();
  });

  test("after migrate-store the bridge runs on PostgreSQL with the same nick, PM room and message links", async () => {
    // An NeDB bridge in use: a chosen nick, a PM room, a relayed line (a message link).
    adminRoom = await alice.createRoom({ preset: "trusted_private_chat", is_direct: true, invite: [`@ircbot:${stack.synapse.serverName}`] });
    await alice.waitForMessage(adminRoom, (e) => /This is your admin room/.test(body(e)));
    await alice.sendText(adminRoom, "!nick AliceMig");
    await alice.waitForMessage(adminRoom, (e) => e.sender !== alice.userId && /now AliceMig/.test(body(e)), 30_000);
    const oldEvent = await alice.sendText(roomId, "before the move");
    const raw = await carol.waitForRaw("alice's line with its msgid", (l) => / PRIVMSG #migrate :before the move$/.test(l) && l.includes(":AliceMig!"), 30_000);
    const msgid = /[@;]msgid=([^; ]+)/.exec(raw)?.[1];
    assert.ok(msgid, `InspIRCd gives lines a msgid: ${raw}`);
    carol.say("AliceMig", "psst");
    const pmRoom = await alice.waitForInvite("carol's PM room", (s) => s.some((e) => e.type === "m.room.member" && e.sender === stack.ghostId("carol")));
    await alice.joinRoom(pmRoom);
    await alice.waitForMessage(pmRoom, (e) => body(e) === "psst");
    await stack.bridge.stop("SIGTERM");

    // Copy, twice (the second changes nothing), then run on PostgreSQL with the NeDB files gone.
    const url = await target.createDatabase("migrated");
    const dataDir = join(stack.dir, "data");
    for (let run = 0; run < 2; run++) {
      const res = spawnSync(process.execPath, [MAIN_JS, "migrate-store", "--from", dataDir, "--to", url], { encoding: "utf8", timeout: 120_000 });
      assert.equal(res.status, 0, res.stderr + res.stdout);
      assert.match(res.stdout, /pmRooms\s+1 copied/);
      assert.match(res.stdout, /puppets\s+1 copied/);
      assert.match(res.stdout, /messageLinks\s+[1-9]\d* copied/);
    }
    renameSync(dataDir, `${dataDir}.nedb`);
    stack.configOverrides = { store: { engine: "postgres", connectionString: url, dataDir } };
    await stack.startBridge();

    // The same nick.
    await alice.sendText(roomId, "after the move");
    const line = await carol.waitForLine((l) => l.text === "after the move", "alice's line after the move", 60_000);
    assert.equal(line.nick, "AliceMig");
    // The same PM room, no new invite.
    alice.inviteState.clear();
    carol.say("AliceMig", "still there?");
    await alice.waitForMessage(pmRoom, (e) => body(e) === "still there?", 60_000);
    assert.equal(alice.inviteState.size, 0, "no new PM room");
    // The same links: an IRC reply to the old line is a Matrix reply to the old event.
    carol.client.raw(`@+draft/reply=${msgid} PRIVMSG #migrate :replying to the old line`);
    const reply = await alice.waitForMessage(roomId, (e) => body(e) === "replying to the old line", 30_000);
    assert.deepEqual(reply.content["m.relates_to"], { "m.in_reply_to": { event_id: oldEvent } });
  });
});
