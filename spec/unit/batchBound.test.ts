import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BatchBound, MAX_OPEN_BATCHES } from "../../src/irc/batchBound.js";

const line = (id: string, text: string) => `@batch=${id};time=2026-01-01T00:00:00.000Z :bob!b@h PRIVMSG #c :${text}`;

describe("open IRCv3 batches are bounded (irc-framework holds their lines until they end)", () => {
  test("lines of an open batch keep their tag while within the bounds; an unopened batch's lines lose it (irc-framework would drop them)", () => {
    const bound = new BatchBound(1_000, 60_000);
    assert.equal(bound.pass(":irc BATCH +h1 chathistory #c", 0), ":irc BATCH +h1 chathistory #c");
    assert.equal(bound.pass(line("h1", "one"), 1), line("h1", "one"));
    assert.equal(bound.pass(line("nope", "two"), 2), "@time=2026-01-01T00:00:00.000Z :bob!b@h PRIVMSG #c :two");
    assert.equal(bound.pass(":irc BATCH -h1", 3), ":irc BATCH -h1");
    assert.equal(bound.pass(line("h1", "late"), 4), "@time=2026-01-01T00:00:00.000Z :bob!b@h PRIVMSG #c :late");
    assert.equal(bound.pass("@batch=x :bob!b@h PRIVMSG #c :only tag", 5), ":bob!b@h PRIVMSG #c :only tag");
  });

  test("past the bytes held or the time open, lines go on at once without the tag; closing frees what was held", () => {
    const bound = new BatchBound(300, 1_000);
    bound.pass("BATCH +big chathistory #c", 0);
    const within = bound.pass(line("big", "x".repeat(100)), 1);
    assert.ok(within!.startsWith("@batch=big"));
    const over = bound.pass(line("big", "y".repeat(250)), 2);
    assert.ok(!over!.includes("batch="));
    bound.pass("BATCH -big", 3);
    bound.pass("BATCH +slow chathistory #c", 10);
    assert.ok(bound.pass(line("slow", "early"), 20)!.includes("batch=slow"), "the held bytes were freed when big ended");
    assert.ok(!bound.pass(line("slow", "too late"), 2_000)!.includes("batch="));
  });

  test("at most a few batches open at once; the end of a batch that is not open is refused", () => {
    const bound = new BatchBound();
    for (let i = 0; i < MAX_OPEN_BATCHES; i++) assert.notEqual(bound.pass(`BATCH +b${i} netsplit a b`), null);
    assert.equal(bound.pass("BATCH +one-more netsplit a b"), null);
    assert.equal(bound.pass("BATCH -never-opened"), null);
    assert.notEqual(bound.pass("BATCH -b0"), null);
    assert.notEqual(bound.pass("BATCH +one-more netsplit a b"), null);
  });
});
