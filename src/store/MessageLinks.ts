/**
 * Event ID ↔ IRC msgid links, written for every relayed line both ways (replies and edits
 * across the bridge read them), with a bound: at most `max` links are kept, and when a write
 * takes the table over it the oldest are pruned in one batch down to `max - pruneBatch`, so
 * pruning runs once per `pruneBatch` links rather than once per line. Links older than the
 * age limit go too (`pruneOld`, run periodically).
 *
 * Writes are batched: links wait in memory up to `flushAfterMs` (or until `batchSize` are
 * waiting) and go to the store in one insert. A crash loses at most those few links, which
 * only costs replies or edits to those lines their link. Lookups see waiting links too. An engine
 * whose writes cost one write call (`cheapLinkWrites`: the embedded one) gets each link at once
 * instead: a flush timer would cost a wakeup, more than the write it saves.
 */
import { getLogger } from "../logging.js";
import { relayMetrics } from "../metrics/metrics.js";
import type { DataStore, MessageLink } from "./DataStore.js";

const log = getLogger("store/links");

export interface MessageLinksOptions {
  /** Most links kept (store.maxMessageLinks). */
  max: number;
  /** Links waiting in memory that trigger a write at once. */
  batchSize?: number;
  /** How long a link may wait in memory before it is written. */
  flushAfterMs?: number;
}

export class MessageLinks {
  private pending: MessageLink[] = [];
  /** Batches handed to the store and not written yet (lookups still see them). */
  private readonly writing = new Set<MessageLink[]>();
  private timer: NodeJS.Timeout | null = null;
  /** Writes and prunes run one at a time, in order. */
  private chain: Promise<void> = Promise.resolve();
  private stored = 0;
  private readonly max: number;
  private readonly pruneBatch: number;
  private readonly batchSize: number;
  private readonly flushAfterMs: number;

  constructor(
    private readonly store: DataStore,
    options: MessageLinksOptions,
  ) {
    this.max = options.max;
    this.pruneBatch = Math.max(1, Math.ceil(options.max / 10));
    this.batchSize = options.batchSize ?? 200;
    this.flushAfterMs = options.flushAfterMs ?? 500;
  }

  /** Reads the stored count, and brings an over-full table (say, after lowering the bound) within it. */
  async load(): Promise<void> {
    this.stored = await this.store.countMessageLinks();
    this.enqueue(() => this.enforceBound());
    await this.chain;
  }

  /** Links stored or waiting to be. */
  get size(): number {
    let writing = 0;
    for (const batch of this.writing) writing += batch.length;
    return this.stored + this.pending.length + writing;
  }

  add(links: MessageLink[]): void {
    if (links.length === 0) return;
    this.pending.push(...links);
    if (this.store.cheapLinkWrites || this.pending.length >= this.batchSize) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.flushAfterMs).unref();
  }

  /** Writes the waiting links now; resolves once they (and any prune they cause) are done. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.pending;
    this.pending = [];
    if (batch.length > 0) {
      this.writing.add(batch);
      this.enqueue(async () => {
        try {
          await this.store.putMessageLinks(batch);
        } finally {
          this.writing.delete(batch);
        }
        this.stored += batch.length;
        await this.enforceBound();
      });
    }
    return this.chain;
  }

  /** Forgets links older than `maxAgeMs`. */
  pruneOld(maxAgeMs: number): Promise<void> {
    this.enqueue(async () => {
      const removed = await this.store.pruneMessageLinks(maxAgeMs);
      this.stored = Math.max(0, this.stored - removed);
      this.report();
    });
    return this.chain;
  }

  async byEvent(eventId: string): Promise<MessageLink | null> {
    return this.unwritten((l) => l.eventId === eventId) ?? this.store.getMessageLinkByEvent(eventId);
  }

  async byMsgid(networkId: string, msgid: string): Promise<MessageLink | null> {
    return this.unwritten((l) => l.networkId === networkId && l.msgid === msgid) ?? this.store.getMessageLinkByMsgid(networkId, msgid);
  }

  /** A link waiting in memory or being written that matches. */
  private unwritten(match: (l: MessageLink) => boolean): MessageLink | undefined {
    const found = this.pending.find(match);
    if (found) return found;
    for (const batch of this.writing) {
      const l = batch.find(match);
      if (l) return l;
    }
    return undefined;
  }

  private async enforceBound(): Promise<void> {
    if (this.stored > this.max) {
      const removed = await this.store.pruneOldestMessageLinks(this.max - this.pruneBatch);
      this.stored = Math.max(0, this.stored - removed);
      log.debug("Pruned the oldest message links", { removed, kept: this.stored });
    }
    this.report();
  }

  private report(): void {
    relayMetrics.messageLinks.set(this.stored);
  }

  private enqueue(job: () => Promise<void>): void {
    // One failed write or prune is logged and does not stop the ones after it.
    this.chain = this.chain.then(job).catch((err: Error) => void log.warn("Could not store or prune message links", { error: err.message }));
  }
}
