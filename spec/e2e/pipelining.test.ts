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
  let quietRoom: string;

  before(async () => {
    stack = await Stack.start({ proxy: true });
    alice = await stack.matrixUser("alice");
    roomId = await alice.createRoom({ name: "Pipelining" });
    quietRoom = await alice.createRoom({ name: "Quiet" });
    stack.mappings = { "#pipe": { roomIds: [roomId] }, "#quiet": { roomIds: [quietRoom] } };
    // chief is in first, so is a channel operator (sets +m below).
    chief = await stack.ircUser("chief", ["#pipe", "#quiet"]);
    await stack.startBridge();
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

  test("a line a channel refuses (+m) fails only its own message, while other lines are in flight", async () => {
    await alice.sendText(quietRoom, "before the quiet");
    await chief.waitForLine((l) => l.text === "before the quiet", "alice's line in #quiet", 60_000);
    chief.client.raw("MODE", "#quiet", "+m");
    await chief.waitForRaw("+m", (l) => /MODE #quiet :?\+m/.test(l));
    const around = Array.from({ length: 10 }, (_, i) => `around ${i}`);
    // Sent together: the refused line goes out among lines to #pipe still waiting for their echoes.
    await Promise.all([...around.slice(0, 5).map((b) => alice.sendText(roomId, b)), alice.sendText(quietRoom, "into the quiet"), ...around.slice(5).map((b) => alice.sendText(roomId, b))]);
    const notice = await alice.waitForMessage(quietRoom, (e) => e.content.msgtype === "m.notice" && /your message could not be sent/.test(String(e.content.body)), 60_000);
    assert.match(String(notice.content.body), /#quiet refused it/);
    const onIrc = () => chief.lines.filter((l) => l.text.startsWith("around ")).map((l) => l.text);
    await waitFor("the 10 lines to #pipe on IRC", () => around.every((b) => onIrc().includes(b)), 60_000);
    assert.equal(onIrc().length, 10, "each once");
    await alice.sendText(roomId, "after the refusal");
    await chief.waitForLine((l) => l.text === "after the refusal", "the next line to #pipe", 60_000);
    const failures = alice.messages(roomId, (e) => e.content.msgtype === "m.notice" && /could not be sent/.test(String(e.content.body)));
    assert.deepEqual(failures, [], "no message to #pipe was reported as failed");
    assert.equal(alice.messages(quietRoom, (e) => e.content.msgtype === "m.notice" && /could not be sent/.test(String(e.content.body))).length, 1, "only the refused message is reported");
  });
});
