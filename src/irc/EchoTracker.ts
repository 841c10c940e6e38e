/**
 * With echo-message, the server sends each of our lines back once it has accepted them: that
 * echo confirms delivery and carries the line's msgid. Lines are matched oldest first per
 * target (a long line comes back in parts). A line to a nick that is not on IRC is answered
 * with ERR_NOSUCHNICK instead, and one to a channel that will not take it (+m, +n, banned)
 * with ERR_CANNOTSENDTOCHAN: both fail, with the server's reason.
 */
import { plainOf } from "../format/ircFormat.js";
import { IrcFailure } from "./errors.js";

/** How long a sent line waits for its echo before the link itself is checked. */
const ECHO_TIMEOUT_MS = 10_000;

interface Pending {
  target: string;
  rest: string;
  settle: (msgid: string | null, err?: IrcFailure) => void;
}

export class EchoTracker {
  private readonly pending: Pending[] = [];

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
   * Waits for the echo of a line about to be sent: `echoed` resolves with its msgid (null
   * after a timeout) and rejects if the target does not exist; `cancel` forgets it (the line
   * was never written).
   */
  expect(target: string, text: string): { echoed: Promise<string | null>; cancel(): void } {
    let entry!: Pending;
    const echoed = new Promise<string | null>((resolve, reject) => {
      entry = {
        target: this.casefold(target),
        rest: plainOf(text),
        settle: (msgid, err) => {
          clearTimeout(timer);
          this.forget(entry);
          if (err) reject(err);
          else resolve(msgid);
        },
      };
      const timer = setTimeout(() => void this.onLate(entry), this.echoTimeoutMs);
      this.pending.push(entry);
    });
    return {
      echoed,
      cancel: () => {
        echoed.catch(() => undefined);
        entry.settle(null);
      },
    };
  }

  /** One of our lines came back from the server. */
  onEcho(target: string, text: string, msgid: string | null): void {
    const folded = this.casefold(target);
    const entry = this.pending.find((p) => p.target === folded);
    // Compared without formatting: a split line reopens its formatting on the next piece (and
    // a +c channel strips it), so the pieces' codes differ from the text's.
    const plain = plainOf(text);
    if (!entry || !entry.rest.startsWith(plain)) return;
    entry.rest = entry.rest.slice(plain.length).trimStart();
    if (entry.rest.length === 0) entry.settle(msgid);
  }

  /** The server refused the oldest line waiting for `target`. */
  onRefused(target: string, failure: IrcFailure): void {
    const folded = this.casefold(target);
    this.pending.find((p) => p.target === folded)?.settle(null, failure);
  }

  /** An echo is late: no echo is not delivery, so the link is checked before deciding. */
  private async onLate(entry: Pending): Promise<void> {
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
    for (const entry of [...this.pending]) entry.settle(null, new IrcFailure("disconnected", "the IRC connection was lost before the server confirmed it"));
  }

  private forget(entry: Pending): void {
    const i = this.pending.indexOf(entry);
    if (i >= 0) this.pending.splice(i, 1);
  }
}
