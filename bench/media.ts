/**
 * `npm run bench:media` (also part of `npm run bench`): a Matrix user sends a file, and IRC
 * users fetch its link through the bridge: BENCH_MEDIA_DOWNLOADS (200) downloads,
 * BENCH_MEDIA_CONCURRENCY (20) at a time, for each size in BENCH_MEDIA_SIZES_MB (5,20).
 * Prints throughput, time to first byte (p50/p99) and the bridge's RSS sampled from /proc
 * during each run (it must not grow with the file size: the bridge streams), and the same
 * downloads straight from Synapse as a baseline.
 */
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { freePort } from "../spec/harness/ports.js";
import { Stack } from "../spec/harness/stack.js";
import type { MatrixTestClient } from "../spec/harness/matrixClient.js";
import { percentile, rssMiB, runBench } from "./stats.js";

const DOWNLOADS = Number(process.env.BENCH_MEDIA_DOWNLOADS ?? 200);
const CONCURRENCY = Number(process.env.BENCH_MEDIA_CONCURRENCY ?? 20);
const SIZES_MB = (process.env.BENCH_MEDIA_SIZES_MB ?? "5,20").split(",").map(Number);

interface RunResult {
  ttfb: number[];
  bytes: number;
  elapsedMs: number;
  failures: number;
  rss: number[];
  /** Node's external memory (Buffers) and used heap, MiB, sampled from the bridge's /metrics. */
  external: number[];
  heap: number[];
}

/** The bridge's /metrics port, for memory samples (0: none). */
let metricsPort = 0;

async function sampleMetrics(into: RunResult): Promise<void> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)`, "m").exec(text)?.[1] ?? NaN) / 1024 / 1024;
  into.external.push(value("nodejs_external_memory_bytes"));
  into.heap.push(value("nodejs_heap_size_used_bytes"));
}

/** One download to the end; the time to its first body byte. */
async function download(url: string, headers: Record<string, string>, expected: number): Promise<{ ttfb: number; bytes: number }> {
  const started = performance.now();
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(300_000) });
  if (!res.ok || !res.body) throw new Error(`${res.status}`);
  const reader = res.body.getReader();
  let ttfb = -1;
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (ttfb < 0) ttfb = performance.now() - started;
    bytes += value.length;
  }
  if (bytes !== expected) throw new Error(`got ${bytes} of ${expected} bytes`);
  return { ttfb, bytes };
}

async function run(url: string, headers: Record<string, string>, expected: number, pid: number | null): Promise<RunResult> {
  const result: RunResult = { ttfb: [], bytes: 0, elapsedMs: 0, failures: 0, rss: [], external: [], heap: [] };
  const sampler = setInterval(() => {
    if (pid === null) return;
    void rssMiB(pid).then((r) => result.rss.push(r), () => undefined);
    void sampleMetrics(result).catch(() => undefined);
  }, 100);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < DOWNLOADS) {
        next++;
        try {
          const { ttfb, bytes } = await download(url, headers, expected);
          result.ttfb.push(ttfb);
          result.bytes += bytes;
        } catch (err) {
          result.failures++;
          if (result.failures <= 3) process.stderr.write(`download failed: ${(err as Error).message}\n`);
        }
      }
    }),
  );
  result.elapsedMs = performance.now() - started;
  clearInterval(sampler);
  return result;
}

function report(label: string, r: RunResult): string {
  const sorted = [...r.ttfb].sort((a, b) => a - b);
  const mbps = r.bytes / 1e6 / (r.elapsedMs / 1000);
  const max = (xs: number[]) => Math.max(...xs.filter((x) => !Number.isNaN(x))).toFixed(1);
  const rss = r.rss.length ? `\n${"".padEnd(28)} bridge during run (max): RSS ${max(r.rss)} MiB, heap used ${max(r.heap)} MiB, Buffers (external) ${max(r.external)} MiB` : "";
  return (
    `${label.padEnd(28)} ${r.ttfb.length}/${DOWNLOADS} ok  ${mbps.toFixed(1)} MB/s  ` +
    `TTFB p50 ${percentile(sorted, 50).toFixed(1)} ms  p99 ${percentile(sorted, 99).toFixed(1)} ms  (${(r.elapsedMs / 1000).toFixed(1)} s)${rss}`
  );
}

async function upload(user: MatrixTestClient, bytes: Buffer, filename: string): Promise<string> {
  const res = await fetch(`${user.baseUrl}/_matrix/media/v3/upload?filename=${encodeURIComponent(filename)}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${user.accessToken}`, "Content-Type": "application/octet-stream" },
    body: new Uint8Array(bytes),
  });
  const json = (await res.json()) as { content_uri?: string };
  if (!json.content_uri) throw new Error(`upload failed: ${res.status} ${JSON.stringify(json)}`);
  return json.content_uri;
}

async function main(): Promise<void> {
  const stack = await Stack.start();
  try {
    const alice = await stack.matrixUser("alice");
    const roomId = await alice.createRoom({ name: "media bench" });
    stack.mappings = { "#bench": { roomIds: [roomId] } };
    const mediaPort = await freePort();
    stack.configOverrides = { media: { publicUrl: `http://127.0.0.1:${mediaPort}/media/`, port: mediaPort, bindAddress: "127.0.0.1", maxBytes: 64 * 1024 * 1024 } };
    await stack.startBridge();
    const bob = await stack.ircUser("bob", ["#bench"]);
    const pid = stack.bridge.pid!;
    metricsPort = stack.bridgePort;
    const lines: string[] = ["", `Media benchmark: ${DOWNLOADS} downloads, ${CONCURRENCY} at a time, Node ${process.version}`];
    lines.push(`bridge RSS before: ${(await rssMiB(pid)).toFixed(1)} MiB`);
    for (const mb of SIZES_MB) {
      const size = Math.round(mb * 1024 * 1024);
      const mxc = await upload(alice, randomBytes(size), `file-${mb}.bin`);
      const seen = bob.lines.length;
      await alice.send(roomId, { msgtype: "m.file", body: `file-${mb}.bin`, url: mxc, info: { size, mimetype: "application/octet-stream" } });
      const line = await bob.waitForLine((l) => bob.lines.indexOf(l) >= seen && l.text.includes(`file-${mb}.bin`), "the file's line", 60_000);
      const link = /(https?:\/\/\S+)$/.exec(line.text)![1];
      await download(link, {}, size); // warm-up
      const bridged = await run(link, {}, size, pid);
      lines.push(report(`${mb} MB via the bridge`, bridged));
      const [server, mediaId] = mxc.slice("mxc://".length).split("/");
      const direct = await run(`${stack.synapse.url}/_matrix/client/v1/media/download/${server}/${mediaId}`, { Authorization: `Bearer ${alice.accessToken}` }, size, null);
      lines.push(report(`${mb} MB from Synapse directly`, direct));
      lines.push(`bridge RSS after ${mb} MB runs: ${(await rssMiB(pid)).toFixed(1)} MiB`);
    }
    const metrics = await (await fetch(`http://127.0.0.1:${stack.bridgePort}/metrics`)).text();
    lines.push(...metrics.split("\n").filter((l) => l.startsWith("bridge_media_requests_total") || l.startsWith("bridge_media_bytes_total")));
    process.stdout.write(`${lines.join("\n")}\n\n`);
  } finally {
    await stack.stop();
  }
}

runBench("media bench", main);
