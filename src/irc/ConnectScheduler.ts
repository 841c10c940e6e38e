/**
 * Every connection attempt to one network goes through here: attempts start evenly spaced,
 * `1 / perSecond` apart (so no one-second window ever holds more than `perSecond`), and at
 * most `maxInFlight` are under way, so a whole-network drop turns into a smooth ramp rather
 * than a storm. When the server says "too many connections", the next start is pushed back
 * by `pauseMs` instead of hammering it.
 */
import { setTimeout as sleep } from "node:timers/promises";
import PQueue from "p-queue";
import { getLogger } from "../logging.js";
import { metrics } from "../metrics/metrics.js";

const log = getLogger("irc/scheduler");
const WINDOW_GUARD_MS = 50;

export class ConnectScheduler {
  private readonly queue: PQueue;
  private readonly spacingMs: number;
  private readonly windowSize: number;
  private nextStartAt = 0;
  private throttledUntil = 0;
  /** Start times of the last `perSecond` attempts, for the sliding one-second window. */
  private readonly recentStarts: number[] = [];

  constructor(
    private readonly networkId: string,
    perSecond: number,
    maxInFlight: number,
    private readonly pauseMs: number,
  ) {
    this.spacingMs = 1000 / perSecond;
    this.windowSize = Math.max(1, Math.floor(perSecond));
    this.queue = new PQueue({ concurrency: maxInFlight });
    const update = () => metrics.connectQueueDepth.set({ network: networkId }, this.queue.size + this.queue.pending);
    this.queue.on("add", update);
    this.queue.on("next", update);
  }

  /** Runs one connection attempt when the rate allows. */
  run<T>(attempt: () => Promise<T>): Promise<T> {
    return this.queue.add(async () => {
      await this.waitForSlot();
      metrics.connectAttempts.inc({ network: this.networkId });
      try {
        return await attempt();
      } catch (err) {
        metrics.connectFailures.inc({ network: this.networkId });
        throw err;
      }
    }) as Promise<T>;
  }

  /**
   * Claims the next start time and waits for it: evenly spaced, after any throttle pause, and
   * never more than `perSecond` starts within one second (with a small guard for timer and
   * network jitter, so the server never sees more either).
   */
  private async waitForSlot(): Promise<void> {
    const now = Date.now();
    const oldestInWindow = this.recentStarts.length >= this.windowSize ? this.recentStarts[this.recentStarts.length - this.windowSize] : -Infinity;
    const startAt = Math.max(now, this.nextStartAt, this.throttledUntil, oldestInWindow + 1000 + WINDOW_GUARD_MS);
    this.nextStartAt = startAt + this.spacingMs;
    this.recentStarts.push(startAt);
    if (this.recentStarts.length > this.windowSize) this.recentStarts.shift();
    if (startAt > now) await sleep(startAt - now);
  }

  /** The server is refusing connections for load: hold every attempt for a while. */
  throttle(): void {
    if (Date.now() < this.throttledUntil) return;
    log.warn("Server reports too many connections; pausing new connections", { network: this.networkId, pauseMs: this.pauseMs });
    this.throttledUntil = Date.now() + this.pauseMs;
  }

  stop(): void {
    this.queue.clear();
  }
}

export type CloseKind = "fatal" | "throttled" | "transient";

/**
 * What a server's parting words mean for reconnecting: bans and bad passwords are final
 * (retrying blindly gets a network's admins to ban the whole bridge), connection-count
 * limits mean "slow down", everything else is worth a retry with backoff.
 */
export function classifyCloseReason(reason: string): CloseKind {
  if (/\b[KGZD]-?Lined\b|\bbanned\b|password (mismatch|incorrect)|\bbad password\b|access denied/i.test(reason)) return "fatal";
  if (/too many (host |user |global |local )?connections|no more connections|connection class is full|throttl|reconnecting too fast/i.test(reason)) {
    return "throttled";
  }
  return "transient";
}
