/**
 * Which events' media links are dead because the event was redacted. The bridge notes each
 * event it gives a link for (MediaSigner's onLink: kind "mediaLinked", kept for the links'
 * lifetime, bounded by count) and keeps a redaction only when it takes back one of those (kind
 * "mediaRedacted"): anyone in any room the bot is in may redact their own messages, and a
 * flood of those must neither grow the store nor push real redactions out. Both are keyed
 * records, so a restart forgets none; redactions are in memory for the check on every
 * download. Links given out before the bridge noted its links have no record: their
 * redactions are not kept.
 */
import { getLogger } from "../logging.js";
import type { MatrixEvent } from "../matrix/DurableAppService.js";
import { metrics } from "../metrics/metrics.js";
import type { DataStore } from "../store/DataStore.js";

const log = getLogger("bridge/media-redactions");
export const REDACTED_KIND = "mediaRedacted";
/** Redacted event IDs kept (a few MB in memory at most); beyond, the oldest are forgotten. */
export const MAX_REDACTED = 100_000;
export const LINKED_KIND = "mediaLinked";
/** Linked events remembered (oldest forgotten; also forgotten once their links expired). */
export const MAX_LINKED = 200_000;

interface RedactedRecord {
  roomId: string;
  at: number;
}

/** The event a redaction redacts: `content.redacts` from room version 11 on, the top-level key before. */
export function redactedEventOf(event: MatrixEvent): string | null {
  const fromContent = (event.content as { redacts?: unknown } | undefined)?.redacts;
  const target = typeof fromContent === "string" ? fromContent : (event as { redacts?: unknown }).redacts;
  return typeof target === "string" && target.length > 0 && target.length <= 255 ? target : null;
}

export class MediaRedactions {
  /** In insertion order: the first key is the oldest. */
  private readonly redacted = new Set<string>();
  /** Events the bridge gave a link for, when (ms); in insertion order, the first the oldest. */
  private readonly linked = new Map<string, number>();

  constructor(
    private readonly store: DataStore,
    private readonly max = MAX_REDACTED,
    /** The links' lifetime (media.linkLifetimeSeconds): older linked events need no record. */
    private readonly lifetimeSeconds: number | null = null,
    private readonly maxLinked = MAX_LINKED,
    private readonly now: () => number = Date.now,
  ) {}

  async load(): Promise<void> {
    for (const record of await this.store.listRecords<RedactedRecord>(REDACTED_KIND)) this.redacted.add(record.key);
    const linked = await this.store.listRecords<RedactedRecord>(LINKED_KIND);
    for (const record of linked.sort((a, b) => a.value.at - b.value.at)) this.linked.set(record.key, record.value.at);
    await this.trim();
    await this.trimLinked();
  }

  /** The bridge gave a link naming these events (an edit's names two): their redactions count. */
  noteLinked(roomId: string, eventIds: (string | undefined)[]): void {
    for (const eventId of eventIds) {
      if (!eventId || this.linked.has(eventId)) continue;
      const at = this.now();
      this.linked.set(eventId, at);
      this.store.putRecord<RedactedRecord>(LINKED_KIND, eventId, { roomId, at }).catch((err: Error) => log.warn("Could not note a media link", { error: err.message }));
    }
    void this.trimLinked();
  }

  isRedacted(eventId: string): boolean {
    return this.redacted.has(eventId);
  }

  /** A redaction from a transaction (any room but admin rooms; see MatrixEvents): kept if it takes back a linked event. */
  async onRedaction(event: MatrixEvent): Promise<void> {
    const target = redactedEventOf(event);
    if (target) await this.redact(String(event.room_id), target);
  }

  /** An event redacted (by a user, or by the bridge itself for an IRC REDACT): its links die. */
  async redact(roomId: string, target: string): Promise<void> {
    if (this.redacted.has(target) || !this.linked.has(target)) return;
    this.redacted.add(target);
    await this.store.putRecord<RedactedRecord>(REDACTED_KIND, target, { roomId, at: Date.now() });
    await this.trim();
  }

  private async trimLinked(): Promise<void> {
    const oldest = this.lifetimeSeconds === null ? -Infinity : this.now() - this.lifetimeSeconds * 1000;
    for (const [eventId, at] of this.linked) {
      if (this.linked.size <= this.maxLinked && at >= oldest) break;
      this.linked.delete(eventId);
      await this.store.deleteRecord(LINKED_KIND, eventId).catch((err: Error) => log.warn("Could not forget an old media link", { error: err.message }));
    }
  }

  private async trim(): Promise<void> {
    while (this.redacted.size > this.max) {
      const oldest = this.redacted.values().next().value!;
      this.redacted.delete(oldest);
      await this.store.deleteRecord(REDACTED_KIND, oldest).catch((err: Error) => log.warn("Could not forget an old redaction", { error: err.message }));
    }
    metrics.mediaRedacted.set(this.redacted.size);
  }
}
