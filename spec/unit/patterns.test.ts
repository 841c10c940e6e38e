import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { casefold } from "../../src/format/casemap.js";
import { channelAllowed, matchesChannelPattern } from "../../src/format/patterns.js";
import { prng } from "../harness/prng.js";

/** The obvious exponential definition, for comparison on short inputs only. */
function reference(pattern: string, text: string): boolean {
  if (pattern === "") return text === "";
  const [p, rest] = [pattern[0], pattern.slice(1)];
  if (p === "*") return reference(rest, text) || (text !== "" && reference(pattern, text.slice(1)));
  return text !== "" && (p === "?" || p === text[0]) && reference(rest, text.slice(1));
}


describe("channel glob matching", () => {
  test("wildcards, literals and case", () => {
    const yes: [string, string][] = [
      ["#rust", "#rust"],
      ["#rust-*", "#Rust-Beginners"],
      ["#rust-*", "#rust-"],
      ["*", ""],
      ["*", "#anything"],
      ["#a?c", "#abc"],
      ["#*a*b*c*", "#xaybzc"],
      ["#**", "#x"],
      ["#[x]", "#{x}"],
      ["#a\\b", "#A|B"],
      ["#*.*", "#a.b"],
      ["#(x)+", "#(X)+"],
      ["#?*?", "#ab"],
    ];
    const no: [string, string][] = [
      ["#a?c", "#abbc"],
      ["#a?c", "#ac"],
      ["#a.c", "#abc"],
      ["#rust", "#rusty"],
      ["#rust", "#rus"],
      ["#*a*b*c*", "#xaybz"],
      ["?", ""],
      ["#?*?", "#a"],
      ["#^x$", "#x"],
    ];
    for (const [p, c] of yes) assert.ok(matchesChannelPattern(p, c), `${p} matches ${c}`);
    for (const [p, c] of no) assert.ok(!matchesChannelPattern(p, c), `${p} does not match ${c}`);
    assert.ok(!matchesChannelPattern("#a~", "#a^", "ascii"), "ascii folds letters only");
    assert.ok(matchesChannelPattern("#a~", "#A^", "rfc1459"));
  });

  test("a pattern with many wildcards against a long channel name completes at once", () => {
    const started = performance.now();
    const channel = `#${"a".repeat(200)}`;
    assert.equal(matchesChannelPattern("#*a*a*a*a*a*b", channel), false);
    assert.equal(matchesChannelPattern(`${"*a".repeat(50)}*b`, `#${"a".repeat(5_000)}`), false);
    assert.equal(matchesChannelPattern(`#${"*?".repeat(100)}`, channel), true);
    assert.equal(channelAllowed(channel, ["#*a*a*a*a*a*a*a*a*b"], []), false);
    const ms = performance.now() - started;
    assert.ok(ms < 200, `took ${ms.toFixed(1)} ms`);
  });

  test("agrees with the reference definition on random inputs", () => {
    const rand = prng(1459);
    const alphabet = ["a", "b", "A", "[", "{", "~", "^", ".", "*", "?"];
    const pick = (n: number, letters: string[]) => Array.from({ length: Math.floor(rand() * n) }, () => letters[Math.floor(rand() * letters.length)]).join("");
    for (let i = 0; i < 5_000; i++) {
      const pattern = pick(8, alphabet);
      const channel = pick(10, alphabet.slice(0, 8));
      const expected = reference(casefold(pattern), casefold(channel));
      assert.equal(matchesChannelPattern(pattern, channel), expected, `${JSON.stringify(pattern)} vs ${JSON.stringify(channel)}`);
    }
  });
});
