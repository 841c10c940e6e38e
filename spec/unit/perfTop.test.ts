/** The relay bench's perf reading (bench/perfTop.ts): JS frames named by the newest code at their address. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CodeMap, readStacks, summariseStacks } from "../../bench/perfTop.js";

// V8 appends a line per piece of code; here 0x1000 held `old` first, then `fresh` (code moved).
const MAP = ["1000 100 JS:^old file:///srv/dist/src/a.js:1:1", "2000 80 JS:^deliver file:///srv/dist/src/irc/IrcTransport.js:197:12", "1000 40 JS:^fresh file:///srv/dist/src/b.js:5:3", ""].join("\n");

const SCRIPT = [
  "node 42  100.000001:     1001 cpu-clock:pppH: ",
  "\t          b51856 v8::internal::Builtin_HandleApiCall+0x56 (/usr/bin/node)",
  "\t            1010 JS:^old file:///srv/dist/src/a.js:1:1+0x10 (/tmp/perf-42.map)",
  "\t            2010 JS:^deliver file:///srv/dist/src/irc/IrcTransport.js:197:12+0x10 (/tmp/perf-42.map)",
  "",
  "node 42  100.000002:     1001 cpu-clock:pppH: ",
  "\t            2020 JS:^deliver file:///srv/dist/src/irc/IrcTransport.js:197:12+0x20 (/tmp/perf-42.map)",
  "",
  "node 42  100.000003:     1001 cpu-clock:pppH: ",
  "\t          14c05fb uv__io_poll+0x4db (/usr/bin/node)",
  "",
].join("\n");

describe("perf stacks of the relay bench", () => {
  test("an address is named by the newest mapping that covers it, and past it by the older one", () => {
    const code = new CodeMap(MAP);
    assert.equal(code.nameOf(0x1010), "JS:^fresh file:///srv/dist/src/b.js:5:3");
    assert.equal(code.nameOf(0x1050), "JS:^old file:///srv/dist/src/a.js:1:1");
    assert.equal(code.nameOf(0x3000), null);
  });

  test("samples are charged to their nearest JS frame; a stack without one is the event loop's", () => {
    const stacks = readStacks(SCRIPT, new CodeMap(MAP));
    assert.deepEqual(stacks, [
      ["v8::internal::Builtin_HandleApiCall", "JS:^fresh src/b.js:5:3", "JS:^deliver src/irc/IrcTransport.js:197:12"],
      ["JS:^deliver src/irc/IrcTransport.js:197:12"],
      ["uv__io_poll"],
    ]);
    const summary = summariseStacks(stacks, 3);
    assert.match(summary, /33\.3% {2}\^fresh src\/b\.js:5:3/);
    assert.match(summary, /33\.3% {2}\(no JavaScript: event loop, kernel, GC\)/);
    assert.match(summary, /inclusive:\n\s+66\.7% {2}\^deliver src\/irc\/IrcTransport\.js:197:12/);
  });
});
