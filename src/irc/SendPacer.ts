/**
 * Flood control for one IRC connection: a token bucket that lets `burst` lines out at once
 * and then `linesPerSecond`. irc-framework writes straight to the socket, and servers
 * disconnect clients that send too fast ("Excess Flood"), so every line goes through here.
 * Lines leave in the order they were queued.
 */
export class SendPacer {
  private tokens: number;
  private lastRefill = Date.now();
  private readonly queue: { write: () => void; resolve: () => void; reject: (err: Error) => void }[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly burst: number,
    private readonly linesPerSecond: number,
  ) {
    this.tokens = burst;
  }

  /** Queues one write; resolves once it has been handed to the socket. */
  send(write: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ write, resolve, reject });
      this.pump();
    });
  }

  /** Fails every queued line (the connection is gone). */
  clear(reason: Error): void {
    for (const item of this.queue.splice(0)) item.reject(reason);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.lastRefill) / 1000) * this.linesPerSecond);
    this.lastRefill = now;
  }

  private pump(): void {
    if (this.timer) return;
    this.refill();
    while (this.queue.length > 0 && this.tokens >= 1) {
      const item = this.queue.shift()!;
      this.tokens -= 1;
      try {
        item.write();
        item.resolve();
      } catch (err) {
        item.reject(err as Error);
      }
    }
    if (this.queue.length > 0) {
      const waitMs = Math.ceil(((1 - this.tokens) / this.linesPerSecond) * 1000);
      this.timer = setTimeout(() => {
        this.timer = null;
        this.pump();
      }, waitMs);
    }
  }
}
