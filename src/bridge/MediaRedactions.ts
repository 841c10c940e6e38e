/**
 * Which events' media links are dead because the event was redacted. The bridge learns
 * redactions from the transactions it receives, keeps the redacted event IDs in the store's
 * keyed records (kind "mediaRedacted", so a restart forgets none) and in memory for the
 * check on every download. A link names no stored state, and a redaction arrives after the
 * event it redacts, maybe after a restart: so each redaction of a real user in a room the
 * bridge hears is kept, not only those of files linked this run; bounded (oldest forgotten).
 */
import { getLogger } from "../logging.js";
import type { MatrixEvent } from "../matrix/DurableAppService.js";
import { metrics } from "../metrics/metrics.js";
import type { DataStore } from "../store/DataStore.js";

const log = getLogger("bridge/media-redactions");
export const REDACTED_KIND = "mediaRedacted";
/** Redacted event IDs kept (a few MB in memory at most); beyond, the oldest are forgotten. */
export const MAX_REDACTED = 100_000;

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

  constructor(
    private readonly store: DataStore,
    private readonly max = MAX_REDACTED,
  ) {}

  async load(): Promise<void> {
    for (const record of await this.store.listRecords<RedactedRecord>(REDACTED_KIND)) this.redacted.add(record.key);
    await this.trim();
  }

  isRedacted(eventId: string): boolean {
    return this.redacted.has(eventId);
  }

  /** A redaction from a transaction (any room but admin rooms; see MatrixEvents). */
  async onRedaction(event: MatrixEvent): Promise<void> {
    const target = redactedEventOf(event);
    if (target) await this.redact(String(event.room_id), target);
  }

  /** An event redacted (by a user, or by the bridge itself for an IRC REDACT): its links die. */
  async redact(roomId: string, target: string): Promise<void> {
    if (this.redacted.has(target)) return;
    this.redacted.add(target);
    await this.store.putRecord<RedactedRecord>(REDACTED_KIND, target, { roomId, at: Date.now() });
    await this.trim();
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
