/**
 * Lines from IRC that the bridge drops (too long, malformed, or one whose handling threw):
 * each is counted, and logged with the line cut short. Logging is rate-limited for the whole
 * process and the same line is logged once, because a hostile server can send a bad line to
 * every connection of ours, as often as it likes.
 */
import { getLogger, type Logger } from "../logging.js";
import { metrics } from "../metrics/metrics.js";

export type LineFaultReason = "too_long" | "malformed" | "failed";

const PREVIEW_CHARS = 200;
const SAME_LINE_MEMORY = 256;

/** The start of a line, printable in a log (control bytes escaped). */
export function previewLine(line: string | Buffer): string {
  const text = typeof line === "string" ? line.slice(0, PREVIEW_CHARS + 1) : line.toString("latin1", 0, PREVIEW_CHARS + 1);
  const cut = text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS)}…` : text;
  // Control bytes (NUL, bare CR, colour codes) written visibly, so the log stays one line.
  return cut.replace(/[\r\n]+$/, "").replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

interface Budget {
  tokens: number;
  refilledAt: number;
  /** Reports not logged since the last one that was. */
  suppressed: number;
}

export class LineFaults {
  /** One log budget per reason, so a flood of malformed lines cannot hide an over-long one. */
  private readonly budgets = new Map<LineFaultReason, Budget>();
  /** Previews recently logged (in insertion order, oldest first). */
  private readonly logged = new Map<string, number>();

  constructor(
    /** At most this many log lines per minute for each reason; the rest are counted. */
    private readonly perMinute = 10,
    private readonly log: Pick<Logger, "warn"> = getLogger("irc/lines"),
    private readonly now: () => number = Date.now,
  ) {}

  report(network: string, reason: LineFaultReason, detail: string, line: string | Buffer, error?: unknown): void {
    metrics.ircLinesDropped.inc({ network, reason });
    const now = this.now();
    const preview = previewLine(line);
    const key = `${reason} ${preview}`;
    const seenAt = this.logged.get(key);
    if (seenAt !== undefined && now - seenAt < 60_000) return;
    let budget = this.budgets.get(reason);
    if (!budget) this.budgets.set(reason, (budget = { tokens: this.perMinute, refilledAt: now, suppressed: 0 }));
    budget.tokens = Math.min(this.perMinute, budget.tokens + ((now - budget.refilledAt) / 60_000) * this.perMinute);
    budget.refilledAt = now;
    if (budget.tokens < 1) {
      budget.suppressed += 1;
      return;
    }
    budget.tokens -= 1;
    this.logged.delete(key);
    this.logged.set(key, now);
    if (this.logged.size > SAME_LINE_MEMORY) this.logged.delete(this.logged.keys().next().value as string);
    const where = error instanceof Error ? error.stack?.split("\n")[1]?.trim() : undefined;
    this.log.warn("Dropped a line from IRC", {
      network,
      reason,
      detail,
      line: preview,
      ...(where ? { at: where } : {}),
      ...(budget.suppressed ? { notLoggedBefore: budget.suppressed } : {}),
    });
    budget.suppressed = 0;
  }
}

/** One for the process: the rate limit is about the log, whichever connection the line came on. */
export const lineFaults = new LineFaults();
