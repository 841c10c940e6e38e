/**
 * When a connection tries again after it closed: exponential backoff with "equal jitter"
 * (half the ceiling plus a random half), from 1 s up to 60 s, reset once it is connected.
 * Many connections dropped together (a netsplit) so come back spread out, not in a storm.
 */
const BACKOFF_BASE_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;

export class ReconnectBackoff {
  private attempt = 0;
  private timer: NodeJS.Timeout | null = null;

  /** Whether a retry is waiting. */
  get scheduled(): boolean {
    return this.timer !== null;
  }

  /** Schedules `retry` after the next delay (unless one is waiting); returns the attempt and delay. */
  schedule(retry: () => void): { attempt: number; delayMs: number } | null {
    if (this.timer) return null;
    this.attempt += 1;
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (this.attempt - 1));
    const delayMs = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.timer = setTimeout(() => {
      this.timer = null;
      retry();
    }, delayMs);
    return { attempt: this.attempt, delayMs };
  }

  /** Connected: the next close starts from the first delay again. */
  reset(): void {
    this.attempt = 0;
  }

  /** Stopped for good: a waiting retry is dropped. */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
