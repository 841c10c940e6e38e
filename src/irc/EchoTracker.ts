/**
 * With echo-message, the server sends each of our lines back once it has accepted them: that
 * echo confirms delivery and carries the line's msgid. Echoes are matched by count, oldest
 * first per target (a message split into N lines comes back as N echoes): the server echoes
 * in the order it accepted, and may change the text (colours stripped, words censored), so
 * text is no proof either way. A line to a nick that is not on IRC is answered
 * with ERR_NOSUCHNICK instead, and one to a channel that will not take it (+m, +n, banned)
 * with ERR_CANNOTSENDTOCHAN: both fail, with the server's reason.
 *
 * Several lines may be in flight per target (the outbox pipelines them): every piece of a
 * split line is answered, by an echo or a refusal, so an entry stays until all its pieces are
 * answered, and a refusal of its first piece is never taken for the next message's.
 */
import { IrcFailure } from "./errors.js";

/** How long a written line waits for its echo before the link itself is checked. */
const ECHO_TIMEOUT_MS = 10_000;

interface Pending {
  target: string;
  /** Answers (echoes or refusals) still to come for this message (one per line it was split into). */
  remaining: number;
  /** The first refusal among its pieces: it fails once the rest are answered. */
  failure: IrcFailure | null;
  /** When its echo is late (0: not written yet; -1: found late, the link is being checked). */
  lateAt: number;
  settle: (msgid: string | null, err?: IrcFailure) => void;
}

export interface EchoWait {
  /** Resolves with the msgid (null without one) once echoed; rejects if refused, unconfirmed or disconnected. */
  echoed: Promise<string | null>;
  /** The line is on the socket: its echo timeout starts now (not while it waited for flood control). */
  written(): void;
  /** Forgets it (the line was never written). */
  cancel(): void;
}

export class EchoTracker {
  private readonly pending: Pending[] = [];
  /**
   * One timer per connection for every line in flight, not one armed and cleared per line: it
   * fires at the oldest written line's deadline, handles the late ones and re-arms for the next.
   */
  private timer: NodeJS.Timeout | null = null;

  private probing: Promise<boolean> | null = null;

  /**
   * `checkLink` asks the server for a sign of life (PING/PONG) when an echo is late: true if
   * it answered (so the line was read and not accepted), false if the link is dead (and the
   * connection drops it, failing what is pending here as "disconnected", to be sent again).
   */
  constructor(
    private readonly names: { casefold(name: string): string },
    private readonly checkLink: () => Promise<boolean> = async () => true,
    private readonly echoTimeoutMs = ECHO_TIMEOUT_MS,
  ) {}

  private casefold(name: string): string {
    return this.names.casefold(name);
  }

  /**
   * Waits for the echo of a line about to be queued for writing (expectations are made in the
   * order lines are written: the writer keeps its queue's order).
   */
  expect(target: string, lines: number): EchoWait {
    let entry!: Pending;
    const echoed = new Promise<string | null>((resolve, reject) => {
      entry = {
        target: this.casefold(target),
        remaining: Math.max(1, lines),
        failure: null,
        lateAt: 0,
        settle: (msgid, err) => {
          this.forget(entry);
          if (err) reject(err);
          else resolve(msgid);
        },
      };
      this.pending.push(entry);
    });
    return {
      echoed,
      written: () => {
        if (entry.lateAt !== 0 || !this.pending.includes(entry)) return;
        entry.lateAt = performance.now() + this.echoTimeoutMs; // monotonic: a clock step does not move it
        if (!this.timer) this.arm(this.echoTimeoutMs);
        else this.timer.ref();
      },
      cancel: () => {
        echoed.catch(() => undefined);
        entry.settle(null);
      },
    };
  }

  /** One of our lines to `target` came back from the server (the msgid of the message's last line settles it). */
  onEcho(target: string, msgid: string | null): void {
    const entry = this.oldest(target);
    if (!entry) return;
    entry.remaining -= 1;
    if (entry.remaining === 0) entry.settle(msgid, entry.failure ?? undefined);
  }

  /** The server refused the oldest line waiting for `target`. */
  onRefused(target: string, failure: IrcFailure): void {
    const entry = this.oldest(target);
    if (!entry) return;
    entry.remaining -= 1;
    entry.failure ??= failure;
    if (entry.remaining === 0) entry.settle(null, entry.failure);
  }

  private oldest(target: string): Pending | undefined {
    const folded = this.casefold(target);
    return this.pending.find((p) => p.target === folded);
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.sweep(), ms);
  }

  /** The timer fired: the lines whose echo is late are checked; it re-arms for the next deadline. */
  private sweep(): void {
    this.timer = null;
    const now = performance.now();
    let next = Infinity;
    for (const entry of this.pending.slice()) {
      if (entry.lateAt <= 0) continue;
      if (entry.lateAt <= now) {
        entry.lateAt = -1;
        void this.onLate(entry);
      } else next = Math.min(next, entry.lateAt);
    }
    if (next !== Infinity && !this.timer) this.arm(next - now);
  }

  /** An echo is late: no echo is not delivery, so the link is checked before deciding. */
  private async onLate(entry: Pending): Promise<void> {
    // Part of it was refused already: that is the answer, whatever became of the rest.
    if (entry.failure) return entry.settle(null, entry.failure);
    const alive = await (this.probing ??= this.checkLink().finally(() => (this.probing = null)));
    if (!this.pending.includes(entry) || !alive) return; // echoed meanwhile, or failed by clear()
    entry.settle(null, new IrcFailure("unconfirmed", "IRC did not confirm it, so it may not have arrived", true));
  }

  /**
   * The connection closed: lines still waiting were not confirmed, so they fail as
   * "disconnected" and their senders' outboxes send them again after the reconnect
   * (at-least-once: the server may have taken them just before the close).
   */
  clear(): void {
    for (const entry of this.pending.splice(0)) entry.settle(null, new IrcFailure("disconnected", "the IRC connection was lost before the server confirmed it"));
  }

  private forget(entry: Pending): void {
    const i = this.pending.indexOf(entry);
    if (i >= 0) this.pending.splice(i, 1);
    // Nothing in flight: the timer stays (re-armed by nothing) but holds no process open, as no timer did before.
    if (this.pending.length === 0) this.timer?.unref();
  }
}
