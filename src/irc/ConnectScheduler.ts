/**
 * Every connection attempt to one network goes through here: at most `perSecond` attempts
 * start per second and at most `maxInFlight` are under way, so a whole-network drop turns
 * into a smooth ramp rather than a storm. When the server says "too many connections", the
 * queue pauses for `pauseMs` instead of hammering it.
 */
import PQueue from "p-queue";
import { getLogger } from "../logging.js";
import { metrics } from "../metrics/metrics.js";

const log = getLogger("irc/scheduler");

export class ConnectScheduler {
  private readonly queue: PQueue;
  private resumeTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly networkId: string,
    perSecond: number,
    maxInFlight: number,
    private readonly pauseMs: number,
  ) {
    // A fractional rate (0.5/s) becomes one attempt per 2 s.
    const interval = perSecond >= 1 ? 1000 : Math.round(1000 / perSecond);
    const intervalCap = perSecond >= 1 ? Math.floor(perSecond) : 1;
    this.queue = new PQueue({ concurrency: maxInFlight, interval, intervalCap });
    const update = () => metrics.connectQueueDepth.set({ network: networkId }, this.queue.size + this.queue.pending);
    this.queue.on("add", update);
    this.queue.on("next", update);
  }

  get waiting(): number {
    return this.queue.size;
  }

  /** Runs one connection attempt when the rate allows. */
  run<T>(attempt: () => Promise<T>): Promise<T> {
    return this.queue.add(async () => {
      metrics.connectAttempts.inc({ network: this.networkId });
      try {
        return await attempt();
      } catch (err) {
        metrics.connectFailures.inc({ network: this.networkId });
        throw err;
      }
    }) as Promise<T>;
  }

  /** The server is refusing connections for load: hold every attempt for a while. */
  throttle(): void {
    if (this.resumeTimer) return;
    log.warn("Server reports too many connections; pausing new connections", { network: this.networkId, pauseMs: this.pauseMs });
    this.queue.pause();
    this.resumeTimer = setTimeout(() => {
      this.resumeTimer = null;
      this.queue.start();
    }, this.pauseMs);
    this.resumeTimer.unref();
  }

  stop(): void {
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
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
