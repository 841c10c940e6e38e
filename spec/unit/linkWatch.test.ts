/**
 * LinkWatch (issue 16): one timer watches every connection's link, as irc-framework's per
 * connection ping timers did: a PING after 30 s of silence, a drop after 120 s.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { LinkWatch, type WatchedLink } from "../../src/irc/LinkWatch.js";

function link(heardAt: number) {
  const seen: string[] = [];
  const l: WatchedLink & { heardAt: number; seen: string[] } = {
    heardAt,
    seen,
    keepAlive: () => void seen.push("ping"),
    silentFor: (ms) => void seen.push(`dead ${ms}`),
  };
  return l;
}

describe("LinkWatch", () => {
  test("a quiet link is pinged once per quiet spell, and dropped once silent for the timeout; a talking one is left alone", () => {
    const watch = new LinkWatch(30_000, 120_000, 5_000);
    const quiet = link(0);
    const talking = link(0);
    watch.add(quiet);
    watch.add(talking);
    // `talking` hears a line a second before each round.
    const sweep = (now: number) => {
      talking.heardAt = now - 1_000;
      watch.sweep(now);
    };
    try {
      sweep(10_000);
      assert.deepEqual(quiet.seen, []);
      sweep(30_000);
      assert.deepEqual(quiet.seen, ["ping"]);
      sweep(45_000);
      sweep(59_000);
      assert.deepEqual(quiet.seen, ["ping"], "not again within the same 30 s");
      sweep(60_000);
      assert.deepEqual(quiet.seen, ["ping", "ping"]);
      sweep(119_000);
      assert.deepEqual(quiet.seen, ["ping", "ping", "ping"]);
      sweep(120_000);
      assert.deepEqual(quiet.seen, ["ping", "ping", "ping", "dead 120000"]);
      assert.equal(watch.size, 1, "a dropped link is no longer watched");
      assert.deepEqual(talking.seen, [], "a link that hears lines is never pinged");
    } finally {
      watch.delete(quiet);
      watch.delete(talking);
    }
  });
});
