/**
 * Keeps "the homeserver answered within the last minute" true for an idle bridge: when no
 * call of the bridge's has been answered for an interval, it asks the homeserver for
 * `/_matrix/client/versions` through the same client (so through the same request hook,
 * timeout and connection pool as real traffic: see matrix/httpTimeout.ts). A busy bridge sends
 * no pings at all. One ping at a time.
 */
import { getLogger } from "../logging.js";

const log = getLogger("ops/homeserver-ping");

export class HomeserverPing {
  private timer: NodeJS.Timeout | null = null;
  private inFlight = false;

  constructor(
    /** One cheap call to the homeserver, through the bridge's own client. */
    private readonly ping: () => Promise<unknown>,
    private readonly everyMs: number,
    private readonly lastAnsweredAt: () => number,
  ) {}

  /** Pings now if nothing was answered yet (so /ready need not wait an interval), then every interval. */
  start(): void {
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.everyMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.inFlight || Date.now() - this.lastAnsweredAt() < this.everyMs) return;
    this.inFlight = true;
    try {
      await this.ping();
    } catch (err) {
      log.warn("The homeserver did not answer a ping", { error: (err as Error).message });
    } finally {
      this.inFlight = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
