/**
 * irc-framework holds every line of an open IRCv3 batch until the batch ends, then handles
 * them all at once. A server that opens a batch and never ends it, or fills one without limit,
 * would grow the bridge's memory for ever and hold back every line tagged with it. Here, per
 * connection, open batches may hold at most MAX_HELD_BYTES and stay open at most
 * MAX_OPEN_MS: past either, a line loses its batch tag and is handled at once. Its grouping is
 * lost (a history replay past the bound is taken as live lines), never the line itself. A line
 * tagged with a batch that is not open loses its tag too (irc-framework would drop it without
 * a word), and at most MAX_OPEN_BATCHES may be open at once (a further start is refused).
 */
export const MAX_HELD_BYTES = 2 * 1024 * 1024;
export const MAX_OPEN_MS = 60_000;
export const MAX_OPEN_BATCHES = 32;

const BATCH_COMMAND = /^(?:@\S+ +)?(?::\S+ +)?BATCH +([+-])(\S+)/i;
const BATCH_TAG = /(^|;)batch=([^; ]*)/;

export class BatchBound {
  private readonly open = new Map<string, { since: number; bytes: number }>();
  private held = 0;

  constructor(
    private readonly maxHeldBytes = MAX_HELD_BYTES,
    private readonly maxOpenMs = MAX_OPEN_MS,
  ) {}

  /** Whether a line may concern batches at all (cheap: most lines do not). */
  static concerns(line: string): boolean {
    return (line.charCodeAt(0) === 64 /* @ */ && line.includes("batch=")) || /BATCH /i.test(line.slice(0, 200));
  }

  /** The line to hand on: as it came, or without its batch tag; null: refuse it (a batch start past the bound). */
  pass(line: string, now = Date.now()): string | null {
    const command = BATCH_COMMAND.exec(line);
    if (command) {
      const [, sign, id] = command;
      if (sign === "-") return this.open.has(id) ? (this.close(id), line) : null;
      if (this.open.size >= MAX_OPEN_BATCHES && !this.open.has(id)) return null;
      this.open.set(id, { since: now, bytes: 0 });
      return line;
    }
    if (line.charCodeAt(0) !== 64) return line;
    const space = line.indexOf(" ");
    const tags = space < 0 ? line.slice(1) : line.slice(1, space);
    const id = BATCH_TAG.exec(tags)?.[2];
    if (id === undefined) return line;
    const batch = this.open.get(id);
    if (batch && this.held + line.length <= this.maxHeldBytes && now - batch.since <= this.maxOpenMs) {
      batch.bytes += line.length;
      this.held += line.length;
      return line;
    }
    const kept = tags.split(";").filter((t) => !t.startsWith("batch=")).join(";");
    const rest = space < 0 ? "" : line.slice(space + 1);
    return kept ? `@${kept} ${rest}` : rest;
  }

  private close(id: string): void {
    const batch = this.open.get(id);
    if (!batch) return;
    this.held -= batch.bytes;
    this.open.delete(id);
  }
}
