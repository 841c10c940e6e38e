/** What a Matrix message becomes on IRC, with its relations: replies, threads, edits (issue 14). */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { OutgoingText } from "../../src/bridge/OutgoingText.js";
import { configSchema } from "../../src/config/schema.js";

function make(edits: "diff" | "full" | "off" = "diff") {
  const config = configSchema.parse({
    homeserver: { url: "http://127.0.0.1:1", domain: "hs" },
    networks: { net: { name: "Net", address: "127.0.0.1", botNick: "bot", ghostUserTemplate: "irc_net_$NICK", aliasTemplate: "irc_net_$CHANNEL", edits } },
  });
  const senders: Record<string, string> = { $q: "@irc_net_bob:hs", $mine: "@alice:hs", $root: "@carol:hs" };
  const nicks: Record<string, string> = { "@irc_net_bob:hs": "bob", "@alice:hs": "alice[m]", "@carol:hs": "carol[m]" };
  return new OutgoingText(config, {
    nickOf: (_n, userId) => nicks[userId] ?? null,
    senderOf: async (_r, eventId) => senders[eventId] ?? null,
    msgidOf: async (_n, eventId) => (eventId === "$q" ? "msg-q" : null),
  });
}

describe("outgoing text", () => {
  test("a reply is addressed to the replied-to nick, with +reply tags, and without the fallback", async () => {
    const text = make();
    const content = { msgtype: "m.text", body: "> <@irc_net_bob:hs> tea?\n\nyes", "m.relates_to": { "m.in_reply_to": { event_id: "$q" } } };
    assert.deepEqual(await text.linesFor("net", "!r", "$a", "@alice:hs", content), { lines: ["bob: yes"], tags: { "+reply": "msg-q", "+draft/reply": "msg-q" } });
    // In a PM, no address.
    assert.deepEqual(await text.linesFor("net", "!r", "$b", "@alice:hs", content, false), { lines: ["yes"], tags: { "+reply": "msg-q", "+draft/reply": "msg-q" } });
  });

  test("the sender of a recent event is known without asking the homeserver", async () => {
    const text = make();
    text.noteSender("$fromIrc", "@irc_net_bob:hs");
    assert.deepEqual(await text.linesFor("net", "!r", "$r", "@alice:hs", { body: "ok", "m.relates_to": { "m.in_reply_to": { event_id: "$fromIrc" } } }), { lines: ["bob: ok"] });
  });

  test("a reply to oneself has no address; a thread message replies to the root", async () => {
    const text = make();
    assert.deepEqual(await text.linesFor("net", "!r", "$c", "@alice:hs", { body: "also", "m.relates_to": { "m.in_reply_to": { event_id: "$mine" } } }), { lines: ["also"] });
    const threaded = { body: "in thread", "m.relates_to": { rel_type: "m.thread", event_id: "$root", is_falling_back: true, "m.in_reply_to": { event_id: "$mine" } } };
    assert.deepEqual(await text.linesFor("net", "!r", "$d", "@alice:hs", threaded), { lines: ["carol[m]: in thread"] });
  });

  test("edits: appended words, a substitution, an edit of an edit, unknown originals in full", async () => {
    const text = make();
    await text.linesFor("net", "!r", "$e", "@alice:hs", { body: "see you at" });
    const edit = (body: string, of = "$e") => ({ body: `* ${body}`, "m.new_content": { body }, "m.relates_to": { rel_type: "m.replace", event_id: of } });
    assert.deepEqual(await text.linesFor("net", "!r", "$e2", "@alice:hs", edit("see you at noon")), { lines: ["noon"] });
    assert.deepEqual(await text.linesFor("net", "!r", "$e3", "@alice:hs", edit("see you at one")), { lines: ["s/noon/one/"] });
    assert.equal(await text.linesFor("net", "!r", "$e4", "@alice:hs", edit("see you at one")), null);
    assert.deepEqual(await text.linesFor("net", "!r", "$e5", "@alice:hs", edit("hello", "$unknown")), { lines: ["* hello"] });
  });

  test("edits off sends nothing; full always the whole text", async () => {
    const off = make("off");
    await off.linesFor("net", "!r", "$e", "@alice:hs", { body: "a" });
    assert.equal(await off.linesFor("net", "!r", "$x", "@alice:hs", { body: "* a b", "m.new_content": { body: "a b" }, "m.relates_to": { rel_type: "m.replace", event_id: "$e" } }), null);
    const full = make("full");
    await full.linesFor("net", "!r", "$e", "@alice:hs", { body: "a" });
    assert.deepEqual(await full.linesFor("net", "!r", "$x", "@alice:hs", { body: "* a b", "m.new_content": { body: "a b" }, "m.relates_to": { rel_type: "m.replace", event_id: "$e" } }), { lines: ["* a b"] });
  });
});
