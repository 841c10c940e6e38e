/** Small helpers for printing benchmark figures. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

export function summarise(label: string, latenciesMs: number[], elapsedMs: number, expected: number): string {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const rate = (latenciesMs.length / elapsedMs) * 1000;
  return (
    `${label.padEnd(16)} delivered ${latenciesMs.length}/${expected}  ` +
    `p50 ${percentile(sorted, 50).toFixed(1)} ms  p95 ${percentile(sorted, 95).toFixed(1)} ms  ` +
    `p99 ${percentile(sorted, 99).toFixed(1)} ms  max ${sorted[sorted.length - 1]?.toFixed(1)} ms  ${rate.toFixed(1)} msg/s`
  );
}

/** Resident set size of a process in MiB, from /proc (Linux). */
export async function rssMiB(pid: number): Promise<number> {
  const { readFile } = await import("node:fs/promises");
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/** Runs a benchmark's main; a failure is printed with its stack and the process exits 1. */
export function runBench(name: string, main: () => Promise<void>): void {
  main().catch((err: Error) => {
    process.stderr.write(`${name} failed: ${err?.stack ?? String(err)}\n`);
    process.exit(1);
  });
}
