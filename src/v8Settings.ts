/**
 * V8 settings the bridge gives itself before the rest of it loads (main.ts imports this, then
 * the command line). They must be in place that early: V8 already schedules some of its work
 * while the modules load, with the settings it has then.
 *
 * The memory reducer: 8 s after start-up, and after any full GC that frees memory, V8 checks
 * whether the process allocates slowly and, if it does, takes it for idle and runs one to three
 * "memory-reducing" full GCs, everything marked and compacted. That is made for a browser tab
 * left in the background. A bridge relaying a few messages a second allocates slowly too, so
 * it got those GCs while it worked: on Node 20, about 110 ms of CPU 8–16 s after start-up, as
 * much as relaying a hundred messages (bench/relayCost.ts: 0.3–0.45 ms more per message over
 * the first minute of traffic). Ordinary GCs still free and compact memory as the heap needs
 * (the pool bench's memory per puppet is measured after them), so the reducer is put off: its
 * first wait, scheduled while the modules load, becomes the longest V8 accepts, and while it
 * waits it schedules nothing else (after ~24.8 days of uptime V8's usual behaviour resumes).
 * Anything preloaded before main.js (`--import`, `--require`, NODE_OPTIONS) that grows the heap
 * first gets the usual 8 s wait scheduled; pass the flag to node itself then.
 * On Node 24, V8 can also arm the reducer from a full GC during start-up, with a fixed 8 s wait
 * this setting does not reach; the reducer ran no GC in an idle bridge there either way.
 * spec/e2e/cli.test.ts checks, on Node 20, that the reducer never wakes in the running bridge.
 */
import { setFlagsFromString } from "node:v8";

/** The largest value of a V8 int flag (~24.8 days). */
const NEVER_MS = 2 ** 31 - 1;

setFlagsFromString(`--gc-memory-reducer-start-delay-ms=${NEVER_MS}`);
