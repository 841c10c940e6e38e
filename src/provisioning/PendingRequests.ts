/**
 * Link requests waiting for an operator's answer: one per operator (network and casefolded
 * nick), kept in the store's keyed records (kind "linkRequest") so a restart of the bridge
 * does not forget them, each with a timer for its deadline, re-armed at start-up (a request
 * whose deadline passed while the bridge was down expires at once).
 */
import { getLogger } from "../logging.js";
import type { DataStore } from "../store/DataStore.js";

const log = getLogger("provisioning/pending");
export const RECORD_KIND = "linkRequest";

export interface PendingLink {
  networkId: string;
  /** Casefolded with the network's case mapping. */
  channel: string;
  channelName: string;
  roomId: string;
  /** The Matrix user who asked. */
  userId: string;
  /** The operator asked, as the channel writes the nick. */
  opNick: string;
  /** The operator's nick casefolded: the request's key with the network. */
  opFolded: string;
  /** The channel's key sealed with the credentials key (never in clear), or null. */
  sealedKey: string | null;
  createdAt: number;
  expiresAt: number;
}

const keyOf = (networkId: string, opFolded: string) => `${networkId}\u0000${opFolded}`;

export class PendingRequests {
  private readonly byOp = new Map<string, PendingLink>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly store: DataStore,
    /** The deadline passed: the request was already taken out. */
    private readonly onExpired: (request: PendingLink) => void,
  ) {}

  async load(): Promise<void> {
    for (const record of await this.store.listRecords<PendingLink>(RECORD_KIND)) {
      const request = record.value;
      this.byOp.set(keyOf(request.networkId, request.opFolded), request);
      this.arm(request);
    }
    if (this.byOp.size > 0) log.info("Link requests waiting for an operator's answer", { count: this.byOp.size });
  }

  of(networkId: string, opFolded: string): PendingLink | null {
    return this.byOp.get(keyOf(networkId, opFolded)) ?? null;
  }

  /** The request to link a room to a channel, if one waits. */
  forRoom(roomId: string, networkId: string, channel: string): PendingLink | null {
    return [...this.byOp.values()].find((r) => r.roomId === roomId && r.networkId === networkId && r.channel === channel) ?? null;
  }

  all(): PendingLink[] {
    return [...this.byOp.values()];
  }

  /** Adds a request (synchronously in memory, so a second one for the same operator sees it), then stores it. */
  async add(request: PendingLink): Promise<void> {
    const key = keyOf(request.networkId, request.opFolded);
    if (this.byOp.has(key)) throw new Error(`a request for ${request.opNick} is already pending`);
    this.byOp.set(key, request);
    this.arm(request);
    try {
      await this.store.putRecord(RECORD_KIND, key, request);
    } catch (err) {
      this.take(request);
      throw err;
    }
  }

  /** Takes a request out (answered, expired, failed); false when it was no longer there (settled already). */
  take(request: PendingLink): boolean {
    const key = keyOf(request.networkId, request.opFolded);
    if (this.byOp.get(key) !== request) return false;
    this.byOp.delete(key);
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
    this.store.deleteRecord(RECORD_KIND, key).catch((err: Error) => log.warn("Could not forget a settled link request", { error: err.message }));
    return true;
  }

  /** The operator changed nick (seen by the bot): the request follows them. */
  async rename(networkId: string, oldFolded: string, newNick: string, newFolded: string): Promise<void> {
    const request = this.of(networkId, oldFolded);
    if (!request || oldFolded === newFolded || this.of(networkId, newFolded)) return;
    this.take(request);
    await this.add({ ...request, opNick: newNick, opFolded: newFolded });
  }

  stop(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private arm(request: PendingLink): void {
    const key = keyOf(request.networkId, request.opFolded);
    const timer = setTimeout(() => {
      if (this.take(request)) this.onExpired(request);
    }, Math.max(0, request.expiresAt - Date.now()));
    timer.unref();
    this.timers.set(key, timer);
  }
}
