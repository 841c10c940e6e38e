/**
 * A breakdown of a process's resident memory from /proc/<pid>/smaps, for the pool bench's
 * BENCH_SMAPS=1: where the RSS the bench reports lives (V8's heap pages, malloc's arenas,
 * thread stacks, mapped files), so that a change in RSS per puppet can be put down to one of them.
 *
 * Anonymous mappings are told apart by shape, as glibc and V8 make them on Linux x86-64:
 * - `[heap]`: glibc's main arena (brk).
 * - malloc's other arenas: a mapping starting on a 64 MiB boundary (HEAP_MAX_SIZE) whose
 *   readable part and PROT_NONE rest add up to 64 MiB.
 * - V8's pages: 256 KiB pages on 256 KiB boundaries (regular pages, and new space), counted
 *   here as any anonymous mapping made of whole, aligned 256 KiB pages; V8's large objects and
 *   malloc's own mmap'd blocks (≥ 128 KiB) fall in "other anonymous".
 * - thread stacks: an 8 MiB mapping right after a 4 KiB guard page.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";

interface Region {
  start: bigint;
  end: bigint;
  perms: string;
  name: string;
  rssKiB: number;
}

function regions(pid: number): Region[] {
  const out: Region[] = [];
  let current: Region | null = null;
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      current = { start: BigInt(`0x${head[1]}`), end: BigInt(`0x${head[2]}`), perms: head[3], name: head[4] ?? "", rssKiB: 0 };
      out.push(current);
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && current) current.rssKiB = Number(rss[1]);
  }
  return out;
}

const MiB = 1024n * 1024n;
const ARENA = 64n * MiB;
const V8_PAGE = 256n * 1024n;

/** Resident KiB by kind, and the count of mappings of each kind. */
export function smapsBreakdown(pid: number): Record<string, { kib: number; maps: number }> {
  const all = regions(pid);
  const kinds: Record<string, { kib: number; maps: number }> = {};
  const add = (kind: string, kib: number) => {
    const k = (kinds[kind] ??= { kib: 0, maps: 0 });
    k.kib += kib;
    k.maps += 1;
  };
  for (let i = 0; i < all.length; i++) {
    const r = all[i]!;
    const size = r.end - r.start;
    if (r.name === "[heap]") add("malloc main arena [heap]", r.rssKiB);
    else if (r.name === "[stack]") add("main stack", r.rssKiB);
    else if (r.name.startsWith("/") || r.name.startsWith("[")) add(r.name.startsWith("/") ? "files (code, data)" : `special ${r.name}`, r.rssKiB);
    else if (r.perms.startsWith("---")) add("PROT_NONE reservations", r.rssKiB);
    else if (r.start % ARENA === 0n && size < ARENA && all[i + 1]?.start === r.end && all[i + 1]!.end - r.start === ARENA) add("malloc arenas (threads)", r.rssKiB);
    else if (size === 8n * MiB && all[i - 1]?.end === r.start && all[i - 1]!.end - all[i - 1]!.start === 4096n) add("thread stacks", r.rssKiB);
    else if (r.start % V8_PAGE === 0n && size % V8_PAGE === 0n) add("V8-like pages (256 KiB aligned)", r.rssKiB);
    else add("other anonymous (large objects, malloc mmap)", r.rssKiB);
  }
  return kinds;
}

export function formatBreakdown(label: string, pid: number): string {
  const kinds = smapsBreakdown(pid);
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(rollup)?.[1] ?? NaN);
  const lines = [`  smaps ${label}: Rss ${(field("Rss") / 1024).toFixed(1)} MiB (anonymous ${(field("Anonymous") / 1024).toFixed(1)}, files ${((field("Rss") - field("Anonymous")) / 1024).toFixed(1)})`];
  for (const [kind, { kib, maps }] of Object.entries(kinds).sort((a, b) => b[1].kib - a[1].kib)) {
    if (kib > 0) lines.push(`    ${(kib / 1024).toFixed(1).padStart(7)} MiB  ${kind} (${maps} mappings)`);
  }
  return lines.join("\n");
}

/** nodejs_heap_space_size_{total,used}_bytes and external memory, from the bridge's /metrics text. */
export function heapSpaces(metrics: string): string {
  const spaces: string[] = [];
  for (const m of metrics.matchAll(/^nodejs_heap_space_size_total_bytes\{space="([^"]+)"\} (\S+)/gm)) {
    const used = new RegExp(`^nodejs_heap_space_size_used_bytes\\{space="${m[1]}"\\} (\\S+)`, "m").exec(metrics)?.[1];
    spaces.push(`${m[1]} ${(Number(m[2]) / 2 ** 20).toFixed(1)}/${(Number(used) / 2 ** 20).toFixed(1)}`);
  }
  const external = Number(/^nodejs_external_memory_bytes (\S+)/m.exec(metrics)?.[1] ?? NaN) / 2 ** 20;
  return `  V8 spaces (committed/used MiB): ${spaces.join(", ")}; external ${external.toFixed(1)} MiB`;
}

/**
 * BENCH_MALLOC_TRIM=1 (needs gdb; diagnosis only, it stops the process for a moment): glibc's
 * own account of its heap (malloc_info: bytes taken from the system and bytes free inside), then
 * malloc_trim(0), which hands free pages inside every arena back. What RSS falls by then was
 * memory malloc held free, not data of ours.
 */
export function mallocInfoAndTrim(pid: number, file: string): string {
  let xml: string;
  try {
    // A NULL FILE* (fopen failed) must not reach malloc_info: that would crash the bridge. An
    // `if` block needs a command file (gdb does not read one from separate -ex arguments).
    const script = `${file}.gdb`;
    writeFileSync(script, [`call (void*)fopen("${file}", "w")`, "if $1 == 0", "  quit 1", "end", "call (int)malloc_info(0, $1)", "call (int)fclose($1)", "call (int)malloc_trim(0)", ""].join("\n"));
    execFileSync("gdb", ["-p", String(pid), "-batch", "-nx", "-x", script], { stdio: ["ignore", "ignore", "pipe"], timeout: 120_000 });
    xml = readFileSync(file, "utf8");
  } catch (err) {
    // gdb missing, ptrace refused (Yama ptrace_scope), or the file not written: the run goes on.
    const stderr = String((err as { stderr?: Buffer }).stderr ?? "").trim().split("\n").pop();
    return `  malloc_info unavailable: ${stderr || (err as Error).message}`;
  }
  const tail = xml.slice(xml.lastIndexOf("</heap>"));
  const total = (type: string) => Number(new RegExp(`<total type="${type}" count="\\d+" size="(\\d+)"`).exec(tail)?.[1] ?? NaN);
  const system = Number(/<system type="current" size="(\d+)"/.exec(tail)?.[1] ?? NaN);
  const arenas = (xml.match(/<heap nr=/g) ?? []).length;
  const mmap = total("mmap");
  return `  malloc_info: ${arenas} arenas, ${(system / 2 ** 20).toFixed(1)} MiB from the system (+ ${(mmap / 2 ** 20).toFixed(1)} MiB mmap'd blocks), ` +
    `free inside: fastbins ${(total("fast") / 2 ** 20).toFixed(1)}, rest ${(total("rest") / 2 ** 20).toFixed(1)} MiB`;
}
