/**
 * Whether each registered IRC connection is still alive, checked by one timer for the whole
 * process. irc-framework's own check (`ping_interval`, `ping_timeout`) keeps two timers and
 * four closures per connection, re-arms one of them on every line received, and sends a PING
 * every 30 s even while lines flow: with thousands of idle puppets, memory per puppet and
 * hundreds of PINGs a second. Here, as there, a connection that heard nothing for
 * `pingAfterMs` is sent a PING, and one that heard nothing for `deadAfterMs` is dropped (and
 * reconnects as after any drop); a connection that hears lines is left alone.
 */

/** What the watch needs of a connection (an IrcConnection). */
export interface WatchedLink {
  /** When its socket last delivered anything (ms since the epoch). */
  readonly heardAt: number;
  /** Sends a PING (the answer, like any line, counts as heard). */
  keepAlive(): void;
  /** Drops the connection: nothing was heard for too long. */
  silentFor(ms: number): void;
}

export class LinkWatch {
  private readonly links = new Map<WatchedLink, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly pingAfterMs = 30_000,
    private readonly deadAfterMs = 120_000,
    private readonly everyMs = 5_000,
  ) {}

  get size(): number {
    return this.links.size;
  }

  /** Watches a connection from now (it has just registered). */
  add(link: WatchedLink): void {
    this.links.set(link, 0);
    if (!this.timer) {
      this.timer = setInterval(() => this.sweep(), this.everyMs);
      this.timer.unref();
    }
  }

  delete(link: WatchedLink): void {
    this.links.delete(link);
    if (this.links.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** One round: PINGs the quiet links (once per quiet spell of `pingAfterMs`), drops the silent ones. */
  sweep(now = Date.now()): void {
    for (const [link, pingedAt] of this.links) {
      const quiet = now - link.heardAt;
      if (quiet >= this.deadAfterMs) {
        this.delete(link);
        link.silentFor(quiet);
      } else if (quiet >= this.pingAfterMs && now - Math.max(pingedAt, link.heardAt) >= this.pingAfterMs) {
        this.links.set(link, now);
        link.keepAlive();
      }
    }
  }
}

/** The process's watch, shared by every connection. */
export const linkWatch = new LinkWatch();
