/**
 * Where a bench window's CPU goes on the bridge's main thread, by Linux perf (BENCH_PERF=1 in
 * relayCost.ts). V8's own sampler (--cpu-prof) samples wall-clock time, so a thread waiting in a
 * socket write shows as that write's cost; perf samples only time on the CPU.
 *
 * The bridge runs with --perf-basic-prof, which appends a line to /tmp/perf-<pid>.map for every
 * piece of code V8 makes. Code is moved and recompiled, so one address can appear in several
 * lines; perf's own lookup takes the first, often stale (samples named after code long gone).
 * Here each address is named by the LAST mapping that covers it.
 *
 * Each sample is charged to its nearest JavaScript frame, so the builtins and runtime calls a
 * function makes (property loads, calls, string work) count as its own; samples with no
 * JavaScript frame at all are the event loop, the kernel and the garbage collector.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Code ranges from a --perf-basic-prof map, newest last. */
export class CodeMap {
  private readonly starts: number[] = [];
  private readonly entries: { start: number; end: number; order: number; name: string }[] = [];
  private longest = 0;

  constructor(text: string) {
    const rows = text.split("\n").flatMap((line, order) => {
      const match = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line);
      return match ? [{ start: parseInt(match[1], 16), end: parseInt(match[1], 16) + parseInt(match[2], 16), order, name: match[3] }] : [];
    });
    rows.sort((a, b) => a.start - b.start);
    for (const row of rows) {
      this.entries.push(row);
      this.starts.push(row.start);
      this.longest = Math.max(this.longest, row.end - row.start);
    }
  }

  /** The newest name covering `address`, or null. */
  nameOf(address: number): string | null {
    let lo = 0;
    let hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid] <= address) lo = mid + 1;
      else hi = mid;
    }
    let best: { order: number; name: string } | null = null;
    for (let i = lo - 1; i >= 0 && this.starts[i] >= address - this.longest; i--) {
      const e = this.entries[i];
      if (address < e.end && (!best || e.order > best.order)) best = e;
    }
    return best?.name ?? null;
  }
}

/** Call stacks (leaf first) from `perf script` output, JS frames named by `code`. */
export function readStacks(script: string, code: CodeMap): string[][] {
  const stacks: string[][] = [];
  let current: string[] | null = null;
  for (const line of script.split("\n")) {
    if (line.length === 0) continue;
    if (!/^\s/.test(line)) {
      current = [];
      stacks.push(current);
      continue;
    }
    const frame = /^\s*([0-9a-f]+) (.*) \(([^)]*)\)$/.exec(line);
    if (!frame || !current) continue;
    const symbol = frame[3].startsWith("/tmp/perf-") ? (code.nameOf(parseInt(frame[1], 16)) ?? "JS:(unknown)") : frame[2].replace(/\+0x[0-9a-f]+$/, "");
    current.push(symbol.replace(/file:\/\/\/[^ ]*?\/dist\//, "").replace(/\/[^ ]*?\/node_modules\//, ""));
  }
  return stacks;
}

/** The top `n` functions by samples, self (with the builtins they call) and inclusive. */
export function summariseStacks(stacks: string[][], n = 15): string {
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const add = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  for (const stack of stacks) {
    const js = stack.filter((f) => f.startsWith("JS:"));
    add(self, js[0] ?? "(no JavaScript: event loop, kernel, GC)");
    for (const f of new Set(js)) add(inclusive, f);
  }
  const total = stacks.length || 1;
  const top = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `    ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k.replace(/^JS:/, "")}`);
  return [`  self, with the builtins each calls:`, ...top(self), `  inclusive:`, ...top(inclusive)].join("\n");
}

/** perf recording the main thread of `pid` until stop(). */
export class PerfRecording {
  private constructor(
    private readonly pid: number,
    private readonly dir: string,
    private readonly perf: ChildProcess,
    private readonly exited: Promise<number | null>,
  ) {}

  static async start(pid: number): Promise<PerfRecording> {
    const dir = await mkdtemp(join(tmpdir(), "bench-perf-"));
    const perf = spawn("perf", ["record", "-q", "-F", "999", "-g", "-t", String(pid), "-o", join(dir, "perf.data")], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    perf.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve, reject) => {
      perf.once("error", reject);
      perf.once("exit", (code) => (code === 0 || code === null ? resolve(code) : reject(new Error(`perf record exited with ${code}: ${stderr.trim()}`))));
    });
    // A perf that fails during the window is reported by stop(), not as an unhandled rejection.
    exited.catch(() => undefined);
    return new PerfRecording(pid, dir, perf, exited);
  }

  /** Stops recording; the summary of what was recorded. */
  async stop(): Promise<string> {
    this.perf.kill("SIGINT");
    await this.exited;
    try {
      const script = await runToString("perf", ["script", "-i", join(this.dir, "perf.data")]);
      const stacks = readStacks(script, new CodeMap(readFileSync(`/tmp/perf-${this.pid}.map`, "utf8")));
      return `  ${stacks.length} samples at 999 Hz on the main thread\n${summariseStacks(stacks)}`;
    } finally {
      await rm(this.dir, { recursive: true, force: true });
    }
  }
}

function runToString(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "ignore"] });
    const chunks: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => chunks.push(c));
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(Buffer.concat(chunks).toString()) : reject(new Error(`${command} exited with ${code}`))));
  });
}
