/**
 * `npm run bench` (chanops part): one channel of BENCH_CHANOP_USERS IRC users (2,000 by
 * default) with the bridge bot in it, then an operator voices them all in MODE lines of the
 * server's MODES limit: first half, then the rest. For each step it prints the power-level
 * events the bridge wrote and the time until the room's levels match IRC (or, when the
 * homeserver refuses an event that large, what the bridge did instead).
 *
 * The users are raw TCP clients (NICK, USER, JOIN, PONG: a few KiB each, so thousands fit in
 * the benchmark process). Ghost joins are off (`membership.syncOnJoin: false`): power levels
 * name users whether or not they are in the room, and it is power levels that are measured.
 */
import { connect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { Stack } from "../spec/harness/stack.js";
import { waitFor } from "../spec/harness/wait.js";
import { runBench } from "./stats.js";

const USERS = Number(process.env.BENCH_CHANOP_USERS ?? 2000);
const CHANNEL = "#bench";
const nickOf = (i: number) => `b${i}`;

/** A bare IRC client: registers, joins, answers PINGs. Resolves once it has joined. */
function rawUser(port: number, nick: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let buffer = "";
    const timer = setTimeout(() => reject(new Error(`${nick} did not join in time`)), 120_000);
    socket.setEncoding("utf8");
    socket.on("error", reject);
    socket.on("data", (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, end).replace(/\r$/, "");
        buffer = buffer.slice(end + 1);
        if (line.startsWith("PING")) socket.write(`PONG${line.slice(4)}\r\n`);
        else if (/^:\S+ 001 /.test(line)) socket.write(`JOIN ${CHANNEL}\r\n`);
        else if (new RegExp(`^:${nick}!\\S+ JOIN :?${CHANNEL}`).test(line)) {
          clearTimeout(timer);
          resolve(socket);
        }
      }
    });
    socket.write(`NICK ${nick}\r\nUSER ${nick} 0 * :bench\r\n`);
  });
}

async function counter(stack: Stack, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${stack.bridgePort}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)`, "m").exec(text)?.[1] ?? 0);
}

async function main(): Promise<void> {
  const stack = await Stack.start();
  const sockets: Socket[] = [];
  try {
    stack.networkOverrides = { membership: { syncOnJoin: false } };
    const op = await stack.ircUser("benchop", [CHANNEL]);
    let t = performance.now();
    for (let start = 0; start < USERS; start += 250) {
      const batch = Array.from({ length: Math.min(250, USERS - start) }, (_, k) => rawUser(stack.ircd.port, nickOf(start + k)));
      sockets.push(...(await Promise.all(batch)));
    }
    console.log(`${USERS} IRC users joined ${CHANNEL} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    await stack.startBridge();
    const alice = await stack.matrixUser("benchreader");
    t = performance.now();
    const roomId = await alice.joinRoom(`#irc_testnet_${CHANNEL}:${stack.synapse.serverName}`);
    const levels = async () =>
      ((await alice.request<{ users?: Record<string, number> }>("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.power_levels/`)).users ?? {}) as Record<string, number>;
    await waitFor("the op's ghost at 50 (NAMES learnt)", async () => (await levels())[stack.ghostId("benchop")] === 50, 120_000, 250);
    console.log(`portal opened and NAMES of ${USERS + 2} learnt into power levels in ${((performance.now() - t) / 1000).toFixed(1)} s`);

    const perLine = Number(op.client.network.options.MODES ?? 3) || 3;
    const steps = [Math.floor(USERS / 2), USERS];
    let done = 0;
    for (const upTo of steps) {
      const before = await counter(stack, "bridge_power_level_events_total");
      const started = performance.now();
      let lines = 0;
      for (let i = done; i < upTo; i += perLine) {
        const nicks = Array.from({ length: Math.min(perLine, upTo - i) }, (_, k) => nickOf(i + k));
        op.client.raw("MODE", CHANNEL, `+${"v".repeat(nicks.length)}`, ...nicks);
        lines += 1;
      }
      const wanted = Array.from({ length: upTo }, (_, i) => stack.ghostId(nickOf(i)));
      let matched = false;
      try {
        // Done when the levels match, or when the homeserver refused an event as too large and
        // the bridge has written what fits since.
        const refusedBefore = (stack.bridge.output.match(/Power levels too large/g) ?? []).length;
        await waitFor(`${upTo} voiced ghosts at level 1`, async () => {
          const users = await levels();
          if (wanted.every((u) => users[u] === 1)) return (matched = true);
          const refused = (stack.bridge.output.match(/Power levels too large/g) ?? []).length > refusedBefore;
          return refused && (await counter(stack, "bridge_power_level_events_total")) > before;
        }, 180_000, 500);
      } catch {
        // Reported below.
      }
      const elapsed = (performance.now() - started) / 1000;
      const events = (await counter(stack, "bridge_power_level_events_total")) - before;
      const users = await levels();
      const held = wanted.filter((u) => users[u] === 1).length;
      const size = Buffer.byteLength(JSON.stringify({ users }));
      console.log(
        `voiced ${upTo - done} more (${upTo} in all) in ${lines} MODE lines of up to ${perLine}: ${events} power-level event(s); ` +
          (matched ? `levels match IRC after ${elapsed.toFixed(2)} s` : `levels do NOT match IRC (${held} of ${upTo} voiced entries fit; settled after ${elapsed.toFixed(2)} s)`) +
          `; users map now ${(size / 1024).toFixed(1)} KiB`,
      );
      if (!matched) {
        const tooLarge = (stack.bridge.output.match(/Power levels too large/g) ?? []).length;
        console.log(`  the homeserver refused ${tooLarge} write(s) as too large (M_TOO_LARGE, 64 KiB per event); the bridge dropped entries and wrote what fits`);
      }
      done = upTo;
    }
  } finally {
    for (const s of sockets) s.destroy();
    await stack.stop();
  }
}

runBench("chanops bench", main);
