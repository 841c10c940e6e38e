/**
 * Matrix → IRC pipelining under a fault: a user's lines go out without waiting for each echo,
 * and when the puppet's link is cut with lines written but not confirmed, those lines are
 * written again after the reconnect, in order, before the later ones (at-least-once: the
 * lines IRC already had show twice, and nothing is lost or reordered).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient } from "../harness/matrixClient.js";
import { Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";

describe("Matrix → IRC pipelining", { timeout: 300_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let chief: IrcTestClient;
  let roomId: string;

  before(async () => {
    stack = await Stack.start({ proxy: true });
    alice = await stack.matrixUser("alice");
    roomId = await alice.createRoom({ name: "Pipelining" });
    stack.mappings = { "#pipe": { roomIds: [roomId] } };
    await stack.startBridge();
    chief = await stack.ircUser("chief", ["#pipe"]);
  });

  after(async () => {
    await stack?.stop();
  });

  test("a link cut with lines in flight: the unconfirmed lines are written again in order, then the rest, none lost", async () => {
    const linksBefore = stack.proxy!.connections.length;
    await alice.sendText(roomId, "alice is here");
    await chief.waitForLine((l) => l.text === "alice is here", "alice's first line", 60_000);
    const link = stack.proxy!.connections[linksBefore];
    assert.ok(link, "alice's puppet connected through the proxy");

    // The server's answers (echoes included) no longer reach the puppet: every line written
    // from now on stays unconfirmed, so the lines IRC shows before the cut are all in flight.
    link.freeze();
    const bodies = Array.from({ length: 20 }, (_, i) => `in flight ${i}`);
    for (const body of bodies) await alice.sendText(roomId, body);
    const seen = () => chief.lines.filter((l) => l.text.startsWith("in flight ")).map((l) => l.text);
    // Pipelining: lines go out while none of them is confirmed (one at a time, only the first
    // would, until its echo timeout (10 s) and the link check (10 s more) drop the link).
    await waitFor("10 lines on IRC while their echoes are held back", () => seen().length >= 10, 12_000);
    const writtenAtCut = seen().length;
    link.cut();

    await waitFor("all 20 lines on IRC after the reconnect", () => bodies.every((b) => seen().includes(b)), 120_000);
    const lines = seen();
    // What IRC shows: the lines before the cut (in order), then from the first unconfirmed one on, in order.
    let prefix = 0;
    while (prefix < lines.length && lines[prefix] === bodies[prefix]) prefix++;
    const rest = lines.slice(prefix);
    assert.deepEqual(rest, bodies.slice(bodies.length - rest.length), `after the cut, a tail of the 20 in order (saw ${JSON.stringify(lines)})`);
    const resent = prefix + rest.length - bodies.length;
    assert.ok(prefix >= writtenAtCut, "the lines written before the cut came first, in order");
    assert.ok(resent <= writtenAtCut, `only lines unconfirmed at the cut are doubled (${resent} doubled, ${writtenAtCut} were in flight)`);
    // None was confirmed (the echoes were held back), so each line written before the cut is written again.
    assert.equal(resent, writtenAtCut, "every unconfirmed line is written again");
    process.stdout.write(`# cut with ${writtenAtCut} lines in flight: ${resent} lines shown twice on IRC, none lost or reordered\n`);
  });
});
