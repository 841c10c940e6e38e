/**
 * `npm run bench` (start-up part): how long the bridge takes from process start to serving
 * appservice transactions (a PUT of a transaction answered 200), and its RSS then and a few
 * seconds later, with a store holding BENCH_USERS users with puppet records (10,000),
 * BENCH_ROOMS linked rooms (5,000) and 0 or BENCH_LINKS message links (100,000), on each engine.
 * The 0-link run beside the 100,000-link one shows whether memory grows with the links.
 *
 * The homeserver is a stub answering every call at once (this measures the bridge, not
 * Synapse) and the IRC network refuses connections (idle puppets are not connected at start-up
 * anyway). BENCH_READY_PATH (e.g. /ready) also times until that path answers 200, once the
 * bridge serves one. BENCH_ENGINES=nedb,postgres picks the engines.
 *
 *   npm run build && node dist/bench/startup.js
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import yaml from "js-yaml";
import { parseConfig } from "../src/config/load.js";
import type { DataStore } from "../src/store/DataStore.js";
import { NedbDataStore } from "../src/store/NedbDataStore.js";
import { PgDataStore } from "../src/store/PgDataStore.js";
import { buildRegistration, writeRegistration } from "../src/registration.js";
import { MAIN_JS } from "../spec/harness/bridgeProcess.js";
import { freePort } from "../spec/harness/ports.js";
import { PostgresCluster } from "../spec/harness/postgres.js";
import { rssMiB, runBench } from "./stats.js";

const USERS = Number(process.env.BENCH_USERS ?? 10_000);
const ROOMS = Number(process.env.BENCH_ROOMS ?? 5_000);
const LINKS = Number(process.env.BENCH_LINKS ?? 100_000);
const ENGINES = (process.env.BENCH_ENGINES ?? "nedb,postgres").split(",") as ("nedb" | "postgres")[];
const READY_PATH = process.env.BENCH_READY_PATH ?? null;
const NETWORK = "benchnet";
const SETTLE_MS = 5_000;

/** A homeserver that says yes to everything, at once. */
async function stubHomeserver(): Promise<{ server: Server; port: number }> {
  const port = await freePort();
  const server = createServer((req, res) => {
    req.resume();
    res.setHeader("Content-Type", "application/json");
    const join = /\/join\/([^/?]+)/.exec(req.url ?? "");
    if (req.url?.startsWith("/_matrix/client/versions")) res.end(JSON.stringify({ versions: ["v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11"] }));
    else if (join) res.end(JSON.stringify({ room_id: decodeURIComponent(join[1]) }));
    else res.end("{}");
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { server, port };
}

async function seed(store: DataStore, links: number): Promise<void> {
  await store.open();
  const parallel = async (n: number, write: (i: number) => Promise<void>) => {
    for (let i = 0; i < n; i += 100) await Promise.all(Array.from({ length: Math.min(100, n - i) }, (_, k) => write(i + k)));
  };
  await parallel(ROOMS, (i) => store.upsertRoomLink({ roomId: `!room${i}:bench`, networkId: NETWORK, channel: `#chan${i}`, channelName: `#Chan${i}`, origin: "portal" }));
  await parallel(USERS, async (i) => {
    await store.upsertUser({ userId: `@user${i}:bench`, adminRoomId: `!admin${i}:bench`, features: {} });
    await store.upsertPuppet({ userId: `@user${i}:bench`, networkId: NETWORK, nick: `user${i}[m]`, username: `user${i}`, ipv6: null, channels: [`#Chan${i % ROOMS}`], lastActiveAt: 0, password: null, account: null });
  });
  const now = Date.now();
  for (let i = 0; i < links; i += 5_000) {
    await store.putMessageLinks(Array.from({ length: Math.min(5_000, links - i) }, (_, k) => ({ roomId: `!room${(i + k) % ROOMS}:bench`, eventId: `$ev${i + k}`, networkId: NETWORK, msgid: `msg${i + k}`, at: now - links + i + k })));
  }
  await store.close();
}

interface Result {
  engine: string;
  links: number;
  servingMs: number;
  readyMs: number | null;
  rssServing: number;
  rssSettled: number;
}

async function measure(engine: "nedb" | "postgres", links: number, pgCluster: PostgresCluster | null, hsPort: number): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), "bench-startup-"));
  try {
    const dataDir = join(dir, "data");
    const connectionString = pgCluster ? await pgCluster.createDatabase(`startup_${links}`) : null;
    const seedStart = performance.now();
    await seed(connectionString ? new PgDataStore(connectionString, 20) : new NedbDataStore(dataDir), links);
    process.stdout.write(`  (${engine}, ${links} links: seeded in ${((performance.now() - seedStart) / 1000).toFixed(1)} s)\n`);
    const port = await freePort();
    const config = parseConfig({
      homeserver: { url: `http://127.0.0.1:${hsPort}`, domain: "bench" },
      appservice: { bindAddress: "127.0.0.1", port },
      store: connectionString ? { engine: "postgres", connectionString, dataDir } : { dataDir },
      logging: { level: "warn" },
      networks: { [NETWORK]: { name: "Bench", address: "127.0.0.1", port: await freePort(), tls: { enabled: false }, botNick: "BenchBot", ghostUserTemplate: `irc_${NETWORK}_$NICK`, aliasTemplate: `irc_${NETWORK}_$CHANNEL` } },
    });
    const registration = buildRegistration(config, `http://127.0.0.1:${port}`);
    writeFileSync(join(dir, "config.yaml"), yaml.dump(config));
    writeRegistration(join(dir, "registration.yaml"), registration);

    const started = performance.now();
    const child = spawn(process.execPath, [MAIN_JS, "-c", join(dir, "config.yaml"), "-f", join(dir, "registration.yaml")], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
    const answers = async (path: string, init: RequestInit = {}) => {
      try {
        return (await fetch(`http://127.0.0.1:${port}${path}`, init)).status === 200;
      } catch {
        return false;
      }
    };
    const until = async (what: string, probe: () => Promise<boolean>, timeoutMs = 300_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!(await probe())) {
        if (child.exitCode !== null) throw new Error(`the bridge exited with ${child.exitCode}: ${stderr.slice(-2000)}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(20);
      }
      return performance.now() - started;
    };
    let probe = 0;
    const txn = () => answers(`/_matrix/app/v1/transactions/bench-${probe++}`, { method: "PUT", headers: { Authorization: `Bearer ${registration.hs_token}`, "Content-Type": "application/json" }, body: '{"events":[]}' });
    try {
      const servingMs = await until("serving transactions", txn);
      const rssServing = await rssMiB(child.pid!);
      const readyMs = READY_PATH ? await until(READY_PATH, () => answers(READY_PATH)) : null;
      await sleep(SETTLE_MS);
      const rssSettled = await rssMiB(child.pid!);
      return { engine, links, servingMs, readyMs, rssServing, rssSettled };
    } finally {
      child.kill("SIGKILL");
      await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once("exit", resolve)));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  console.log(`Start-up: ${USERS} users with puppet records, ${ROOMS} linked rooms, 0 and ${LINKS} message links`);
  const hs = await stubHomeserver();
  const pgCluster = ENGINES.includes("postgres") ? new PostgresCluster({ fsync: true }) : null;
  await pgCluster?.start();
  const results: Result[] = [];
  try {
    for (const engine of ENGINES) for (const links of [0, LINKS]) results.push(await measure(engine, links, engine === "postgres" ? pgCluster : null, hs.port));
  } finally {
    hs.server.close();
    await pgCluster?.stop();
  }
  for (const r of results) {
    console.log(
      `${r.engine.padEnd(9)} ${String(r.links).padStart(7)} links  serving after ${(r.servingMs / 1000).toFixed(2)} s` +
        `${r.readyMs === null ? "" : `  ${READY_PATH} after ${(r.readyMs / 1000).toFixed(2)} s`}` +
        `  RSS ${r.rssServing.toFixed(0)} MiB then, ${r.rssSettled.toFixed(0)} MiB ${SETTLE_MS / 1000} s later`,
    );
  }
  for (const engine of ENGINES) {
    const [none, many] = [0, LINKS].map((l) => results.find((r) => r.engine === engine && r.links === l)!);
    console.log(`${engine}: ${LINKS} message links cost ${(many.rssSettled - none.rssSettled).toFixed(0)} MiB of RSS and ${((many.servingMs - none.servingMs) / 1000).toFixed(2)} s of start-up`);
  }
  const pgServing = results.filter((r) => r.engine === "postgres").map((r) => r.servingMs);
  if (pgServing.length > 0) console.log(`PostgreSQL target (serving within 10 s): ${Math.max(...pgServing) <= 10_000 ? "met" : "MISSED"}`);
}

runBench("start-up bench", main);
