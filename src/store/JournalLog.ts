/**
 * The embedded engine's transaction journal: an append-only file (`journal.log`), one JSON line
 * per acknowledged transaction (with its events) and one per handled event, written through a
 * file handle kept open. NeDB (which held the journal before) opened, appended to and closed
 * its file for every insert, remove and update: three to four of those per relayed event were
 * the largest single cost of relaying a message (see bench/relayCost.ts).
 *
 * A line is written synchronously when it comes (see `append`); lines that come while a
 * rewrite is in progress go out together after it. A transaction is one line, so a write cut short (power loss, a full disk) leaves a
 * torn last line, which the next open skips: that transaction was never acknowledged (the 200
 * comes after the write), so the homeserver sends it again. Like NeDB, no fsync: the README
 * says what the embedded engine promises.
 *
 * Everything live is also in memory (transaction IDs for dedupe until pruned, and the line of
 * each transaction with events not yet handled, as it was written), and the file is rewritten
 * with just that at open, when dead lines outnumber live ones, and after a failed append (a
 * partial line must not swallow the next one). Memory changes before the append and is rolled
 * back if it fails, so a rewrite in the writer's turn never misses an acknowledged transaction.
 */
import { existsSync } from "node:fs";
import { open, readFile, rename, rm, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import type { PendingEvent } from "./DataStore.js";
import { writeWhole } from "./writeWhole.js";

type Line =
  | { t: "txn"; id: string; at: number; events: Record<string, unknown>[] }
  | { t: "done"; id: string; seq: number; at: number }
  /** A completed transaction, as compaction writes it (its events are all handled). */
  | { t: "seen"; id: string; at: number; completedAt: number };

interface Txn {
  receivedAt: number;
  completedAt: number | null;
  /** The transaction's line as written (events are parsed from it only for replay). */
  line: string | null;
  /** Seqs of its events not handled yet. */
  pending: Set<number>;
}

/** Rewrite the file when it holds this many lines more than are live. */
const COMPACT_SLACK = 10_000;

export class JournalLog {
  private readonly txns = new Map<string, Txn>();
  private handle: FileHandle | null = null;
  private queued: string[] = [];
  private waiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private writing: Promise<void> | null = null;
  private compactWanted = false;
  /** An append failed part-way: the file is rewritten from memory before the next one. */
  private damaged = false;
  private linesInFile = 0;
  /** Writes at the end of the file (a field, so a test can make the disk fail). */
  private readonly appendText = writeWhole;
  readonly file: string;

  constructor(dataDir: string) {
    this.file = join(dataDir, "journal.log");
  }

  /** Reads the file (skipping a torn last line), then rewrites it compacted and keeps it open for appends. */
  async open(): Promise<{ tornLines: number }> {
    let tornLines = 0;
    const text = existsSync(this.file) ? await readFile(this.file, "utf8") : "";
    for (const raw of text.split("\n")) {
      if (raw === "") continue;
      let line: Line;
      try {
        line = JSON.parse(raw) as Line;
      } catch {
        tornLines += 1;
        continue;
      }
      this.apply(line, raw);
    }
    await this.rewrite();
    return { tornLines };
  }

  /** Imports what an older store kept (the NeDB journal) before the first open's compaction is written. */
  adopt(txnId: string, receivedAt: number, completedAt: number | null, pending: [number, Record<string, unknown>][]): void {
    if (this.txns.has(txnId)) return;
    const last = pending.reduce((max, [seq]) => Math.max(max, seq), -1);
    const events: Record<string, unknown>[] = Array.from({ length: last + 1 }, () => ({}));
    for (const [seq, event] of pending) events[seq] = event;
    const line = pending.length > 0 ? JSON.stringify({ t: "txn", id: txnId, at: receivedAt, events } satisfies Line) : null;
    this.txns.set(txnId, { receivedAt, completedAt, line, pending: new Set(pending.map(([seq]) => seq)) });
  }

  async close(): Promise<void> {
    await this.flushed();
    await this.handle?.close();
    this.handle = null;
  }

  has(txnId: string): boolean {
    return this.txns.has(txnId);
  }

  async record(txnId: string, events: Record<string, unknown>[]): Promise<void> {
    if (this.txns.has(txnId)) return;
    const at = Date.now();
    const line = JSON.stringify({ t: "txn", id: txnId, at, events } satisfies Line);
    this.apply({ t: "txn", id: txnId, at, events }, line);
    try {
      await this.append(line);
    } catch (err) {
      // Not acknowledged: the homeserver sends it again, and it must not look seen then.
      this.txns.delete(txnId);
      throw err;
    }
  }

  async done(txnId: string, seq: number): Promise<void> {
    const txn = this.txns.get(txnId);
    if (!txn?.pending.has(seq)) return;
    const line: Line = { t: "done", id: txnId, seq, at: Date.now() };
    const raw = JSON.stringify(line);
    // Kept in memory even if the append fails: the rewrite that follows a failure writes it.
    this.apply(line, raw);
    await this.append(raw);
  }

  /** Oldest first: transactions in the order they were acknowledged (the map keeps it, and so does the file), events by seq. */
  pendingEvents(): PendingEvent[] {
    return this.copies().flatMap(({ txnId, events }) => events.map(({ seq, event }) => ({ txnId, seq, event })));
  }

  /** Every transaction remembered, in the order received, with its events not handled yet (for `migrate-store`). */
  copies(): { txnId: string; receivedAt: number; completedAt: number | null; events: { seq: number; event: Record<string, unknown> }[] }[] {
    return [...this.txns].map(([txnId, txn]) => {
      const written = txn.line && txn.pending.size > 0 ? (JSON.parse(txn.line) as { events: Record<string, unknown>[] }).events : [];
      const seqs = [...txn.pending].sort((a, b) => a - b);
      return { txnId, receivedAt: txn.receivedAt, completedAt: txn.completedAt, events: seqs.map((seq) => ({ seq, event: written[seq] })) };
    });
  }

  /** Forgets completed transactions older than `maxAgeMs`; compacts the file when it is mostly dead lines. */
  async prune(maxAgeMs: number): Promise<number> {
    const cutoff = Date.now() - maxAgeMs;
    let removed = 0;
    for (const [txnId, txn] of this.txns) {
      if (txn.completedAt !== null && txn.completedAt < cutoff) {
        this.txns.delete(txnId);
        removed += 1;
      }
    }
    if (this.linesInFile > this.txns.size + COMPACT_SLACK) {
      // Compaction runs in the writer's turn, between two group writes, never beside one.
      this.compactWanted = true;
      this.writing ??= this.writeQueued();
      await this.flushed();
    }
    return removed;
  }

  private apply(line: Line, raw: string): void {
    if (line.t === "txn") {
      if (this.txns.has(line.id)) return;
      const empty = line.events.length === 0;
      this.txns.set(line.id, { receivedAt: line.at, completedAt: empty ? line.at : null, line: empty ? null : raw, pending: new Set(line.events.map((_, seq) => seq)) });
    } else if (line.t === "seen") {
      this.txns.set(line.id, { receivedAt: line.at, completedAt: line.completedAt, line: null, pending: new Set() });
    } else {
      const txn = this.txns.get(line.id);
      if (!txn) return;
      txn.pending.delete(line.seq);
      if (txn.pending.size === 0 && txn.completedAt === null) {
        txn.completedAt = line.at;
        txn.line = null;
      }
    }
  }

  /**
   * Appends one line; resolves once it is written. When nothing else is in the writer's hands,
   * the line is written at once with a synchronous write through the kept-open handle: a line
   * of a few hundred bytes into the page cache costs less than the threadpool round trip of an
   * asynchronous write (a worker woken, then the event loop), which was paid twice per relayed
   * message. Otherwise it waits its turn behind the rewrite (or the writes) in progress.
   */
  private append(line: string): Promise<void> {
    if (!this.writing && !this.damaged && !this.compactWanted && this.handle) {
      try {
        this.appendText(this.handle.fd, `${line}\n`);
        this.linesInFile += 1;
        return Promise.resolve();
      } catch (err) {
        // Maybe a partial line in the file: the next write starts with a rewrite from memory.
        this.damaged = true;
        return Promise.reject(err as Error);
      }
    }
    return new Promise<void>((resolve, reject) => {
      this.queued.push(line);
      this.waiters.push({ resolve, reject });
      this.writing ??= this.writeQueued();
    });
  }

  private async writeQueued(): Promise<void> {
    await null; // `this.writing` is set before any of this runs
    while (this.queued.length > 0 || this.compactWanted) {
      const lines = this.queued;
      const waiters = this.waiters;
      this.queued = [];
      this.waiters = [];
      try {
        if (this.compactWanted || this.damaged) {
          // Memory already holds the queued lines' changes: the rewrite includes them.
          this.compactWanted = false;
          await this.rewrite();
          this.damaged = false;
        } else {
          if (!this.handle) throw new Error("the journal is not open");
          this.appendText(this.handle.fd, `${lines.join("\n")}\n`);
          this.linesInFile += lines.length;
        }
        for (const w of waiters) w.resolve();
      } catch (err) {
        // Maybe a partial line in the file: the next write starts with a rewrite from memory.
        this.damaged = true;
        for (const w of waiters) w.reject(err as Error);
      }
    }
    this.writing = null;
  }

  private async flushed(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /** Writes the live state to a new file and swaps it in (a crash in between leaves the old file whole). */
  private async rewrite(): Promise<void> {
    const lines: string[] = [];
    for (const [id, txn] of this.txns) {
      if (txn.pending.size === 0 || !txn.line) {
        lines.push(JSON.stringify({ t: "seen", id, at: txn.receivedAt, completedAt: txn.completedAt ?? txn.receivedAt } satisfies Line));
        continue;
      }
      lines.push(txn.line);
      const count = (JSON.parse(txn.line) as { events: unknown[] }).events.length;
      for (let seq = 0; seq < count; seq++) if (!txn.pending.has(seq)) lines.push(JSON.stringify({ t: "done", id, seq, at: txn.receivedAt } satisfies Line));
    }
    const tmp = `${this.file}.tmp`;
    const out = await open(tmp, "w", 0o600);
    try {
      if (lines.length > 0) await out.writeFile(`${lines.join("\n")}\n`, "utf8");
      await out.sync();
      await rename(tmp, this.file);
    } catch (err) {
      await out.close();
      throw err;
    }
    // Appends go on through the handle that wrote the new file (renaming keeps it valid, at its
    // end), so nothing can fail between the swap and the next append. This runs in the writer's turn.
    const old = this.handle;
    this.handle = out;
    this.linesInFile = lines.length;
    await old?.close().catch(() => undefined);
  }

  /** Removes a file left by an older version once its content was adopted and written here. */
  static async retire(file: string): Promise<void> {
    await rm(file, { force: true });
  }
}
