/**
 * The embedded engine's message links (event ID ↔ IRC msgid): all in memory, indexed by event ID
 * and by network + msgid, and kept in an append-only file (`messages.log`, one JSON array per
 * link) written with `writeSync` through a descriptor kept open. NeDB (which held the links
 * before) opened, appended to and closed its file through the threadpool for every insert, and
 * a link is written for every relayed line both ways (see bench/relayCost.ts): one write
 * syscall per batch is all that is left of that.
 *
 * Removals (pruning) rewrite the file from memory (to a temporary file, then renamed over), so
 * the file never holds dead lines. A write cut short (power loss, a full disk) leaves a torn
 * last line, which the next open skips: only that link is lost, which costs replies and edits
 * to that one line their link. After a failed append the file is rewritten from memory before
 * the next one, so a partial line never swallows the next. Like NeDB, no fsync.
 */
import { closeSync, existsSync, openSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import type { MessageLink } from "./DataStore.js";
import { writeWhole } from "./writeWhole.js";

/** One link as a line: [roomId, eventId, networkId, msgid, at]. */
type Row = [string, string, string, string, number];

function row(l: MessageLink): string {
  return JSON.stringify([l.roomId, l.eventId, l.networkId, l.msgid, l.at] satisfies Row);
}

function parse(raw: string): MessageLink | null {
  try {
    const r = JSON.parse(raw) as unknown;
    if (!Array.isArray(r) || r.length !== 5 || typeof r[4] !== "number" || !r.slice(0, 4).every((v) => typeof v === "string")) return null;
    const [roomId, eventId, networkId, msgid, at] = r as Row;
    return { roomId, eventId, networkId, msgid, at };
  } catch {
    return null;
  }
}

const msgidKey = (networkId: string, msgid: string) => `${networkId}\u0000${msgid}`;

export class LinkLog {
  /** By event ID, in the order written. */
  private readonly byEventId = new Map<string, MessageLink>();
  private readonly byMsgidKey = new Map<string, MessageLink>();
  private fd: number | null = null;
  private damaged = false;
  readonly file: string;

  constructor(dataDir: string) {
    this.file = join(dataDir, "messages.log");
  }

  /** Reads the file (skipping torn lines), adds `adopted` (links an older store kept), and rewrites it compacted. */
  open(adopted: MessageLink[] = []): { tornLines: number } {
    let tornLines = 0;
    const text = existsSync(this.file) ? readFileSync(this.file, "utf8") : "";
    for (const raw of text.split("\n")) {
      if (raw === "") continue;
      const link = parse(raw);
      if (link) this.apply(link);
      else tornLines += 1;
    }
    for (const link of adopted) this.apply({ ...link });
    this.rewrite();
    return { tornLines };
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  /** Adds links (a link with a known event ID replaces it) and appends them in one write. */
  put(links: MessageLink[]): void {
    if (links.length === 0) return;
    if (this.fd === null) throw new Error("the message links are not open");
    for (const l of links) this.apply({ roomId: l.roomId, eventId: l.eventId, networkId: l.networkId, msgid: l.msgid, at: l.at });
    if (this.damaged) return this.rewrite();
    try {
      writeWhole(this.fd, `${links.map(row).join("\n")}\n`);
    } catch (err) {
      // Maybe a partial line in the file: the next put rewrites it from memory (which has these links).
      this.damaged = true;
      throw err;
    }
  }

  byEvent(eventId: string): MessageLink | null {
    const l = this.byEventId.get(eventId);
    return l ? { ...l } : null;
  }

  byMsgid(networkId: string, msgid: string): MessageLink | null {
    const l = this.byMsgidKey.get(msgidKey(networkId, msgid));
    return l ? { ...l } : null;
  }

  get size(): number {
    return this.byEventId.size;
  }

  /** Every link, oldest first (for `migrate-store`). */
  all(): MessageLink[] {
    return [...this.byEventId.values()].map((l) => ({ ...l })).sort((a, b) => a.at - b.at);
  }

  /** Removes the links whose time is at most `cutoff` (inclusive) or below it; rewrites the file if any went. */
  removeUpTo(cutoff: number, inclusive: boolean): number {
    let removed = 0;
    const unindexed = new Set<string>();
    for (const [eventId, l] of this.byEventId) {
      if (inclusive ? l.at > cutoff : l.at >= cutoff) continue;
      this.byEventId.delete(eventId);
      const key = msgidKey(l.networkId, l.msgid);
      if (this.byMsgidKey.get(key) === l) {
        this.byMsgidKey.delete(key);
        unindexed.add(key);
      }
      removed += 1;
    }
    // A msgid linked in several rooms keeps a lookup while any of its links is left.
    if (unindexed.size > 0) {
      for (const l of this.byEventId.values()) {
        const key = msgidKey(l.networkId, l.msgid);
        if (unindexed.has(key) && !this.byMsgidKey.has(key)) this.byMsgidKey.set(key, l);
      }
    }
    if (removed > 0) this.rewrite();
    return removed;
  }

  /** The link times, for choosing a cut-off. */
  times(): Float64Array {
    return Float64Array.from(this.byEventId.values(), (l) => l.at);
  }

  private apply(link: MessageLink): void {
    const old = this.byEventId.get(link.eventId);
    if (old) {
      this.byEventId.delete(link.eventId);
      const oldKey = msgidKey(old.networkId, old.msgid);
      if (this.byMsgidKey.get(oldKey) === old) this.byMsgidKey.delete(oldKey);
    }
    this.byEventId.set(link.eventId, link);
    // Of a channel linked to several rooms one msgid has several links: the first is kept for lookups.
    const key = msgidKey(link.networkId, link.msgid);
    if (!this.byMsgidKey.has(key)) this.byMsgidKey.set(key, link);
  }

  /** Writes the live links to a new file and swaps it in (a crash in between leaves the old file whole). */
  private rewrite(): void {
    const tmp = `${this.file}.tmp`;
    const out = openSync(tmp, "w", 0o600);
    try {
      const lines: string[] = [];
      for (const l of this.byEventId.values()) lines.push(row(l));
      if (lines.length > 0) writeWhole(out, `${lines.join("\n")}\n`);
      renameSync(tmp, this.file);
    } catch (err) {
      closeSync(out);
      throw err;
    }
    // Appends go on through the descriptor that wrote the new file (at its end after the rename).
    if (this.fd !== null) closeSync(this.fd);
    this.fd = out;
    this.damaged = false;
  }
}
