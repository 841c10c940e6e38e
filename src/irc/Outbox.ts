/**
 * A Matrix user's messages on their way to IRC, in order. They wait here for flood control
 * and while the user's connection is down (reconnecting), for at most `ttlMs` each, then go
 * out in the order they were sent. They were acknowledged to the homeserver, so waiting is
 * bounded by age; `maxMessages` is only a safety bound. A message that cannot go (too old, the
 * server refused the user for good, or refused the line) fails with a reason the user is told.
 *
 * Lines are pipelined: a user's next line is written while the server's confirmations (echoes)
 * of the earlier ones are on their way back, up to IN_FLIGHT unconfirmed lines per connection (fewer with a smaller flood-control burst).
 * Order is kept by writing each target's lines in order on the one socket (the server echoes
 * them in that order, see EchoTracker). When the link drops, the lines it had not confirmed
 * (of this message and of later ones) are written again after the reconnect, in their order
 * (at-least-once: the server may have taken some just before the close).
 */
import { isChannelName } from "../format/ircText.js";
import { IrcFailure } from "./errors.js";
import type { IrcConnection, IrcMessageKind } from "./IrcConnection.js";

/**
 * Lines written and not yet confirmed, per connection: an unresponsive server holds no more.
 * Never more than the connection's flood-control burst either: a server that paces us itself
 * (InspIRCd's fakelag: 1 line/s after 10) holds what we sent in its receive queue, and each
 * line waits there behind the others in flight; few enough keeps that wait (and our PING's,
 * see EchoTracker) well under the echo timeout, and the queue under the server's recvq limit.
 */
const IN_FLIGHT = 10;
/** A write failed as "disconnected" while the connection still reads as connected (its close is on the way): wait this long before writing again. */
const CLOSING_PAUSE_MS = 100;

export interface OutgoingMessage {
  /** A channel (joined first if need be) or a nick (a private message). */
  target: string;
  channelKey: string | null;
  kind: IrcMessageKind;
  lines: string[];
  /** IRCv3 client tags for the first line (a reply's `+reply`), sent where the server takes them. */
  tags?: Record<string, string>;
  /** Called once the first line is written to the socket (for the relay-time metric). */
  onFirstWritten?: () => void;
}

/** One message on its way: settles when each of its lines is confirmed, or with the first fatal reason. */
interface Delivery {
  message: OutgoingMessage;
  deadline: number;
  msgids: (string | null)[];
  unconfirmed: number;
  settled: boolean;
  onFirstWritten?: () => void;
  resolve: (msgids: (string | null)[]) => void;
  reject: (err: Error) => void;
}

interface Line {
  delivery: Delivery;
  index: number;
  /** On the way (queued for flood control, on the socket, or waiting for its echo). */
  written: boolean;
}

/** One target's lines not yet confirmed, in order; a pump writes them. */
interface Lane {
  key: string;
  lines: Line[];
  pumping: boolean;
}

/** Failures after which a line is written again (the link or the join will come back); any other fails its message. */
function isRetryable(err: unknown): boolean {
  return err instanceof IrcFailure && !err.fatal && (err.code === "disconnected" || err.code === "join_timeout");
}

export class Outbox {
  /**
   * One lane per target (casefolded): order is kept per channel or nick, and one channel's
   * slow or failing join never holds the user's messages to other channels and PMs.
   */
  private readonly lanes = new Map<string, Lane>();
  private waiting = 0;
  private inFlight = 0;
  private readonly slotWaiters: (() => void)[] = [];
  private closingUntil = 0;
  private readonly maxInFlight: number;

  constructor(
    private readonly connection: IrcConnection,
    private readonly maxMessages: number,
    private readonly ttlMs: number,
    private readonly onDepthChange: (delta: number) => void = () => undefined,
  ) {
    this.maxInFlight = Math.max(1, Math.min(IN_FLIGHT, Math.floor(connection.options?.sendRate?.burst ?? IN_FLIGHT)));
  }

  get depth(): number {
    return this.waiting;
  }

  /** Resolves with the msgids of its lines once the message is on IRC; rejects with the reason it never will be. */
  send(message: OutgoingMessage): Promise<(string | null)[]> {
    if (this.waiting >= this.maxMessages) {
      return Promise.reject(new IrcFailure("queue_full", `${this.waiting} of your messages are already waiting to go to IRC, so this one was not sent`));
    }
    if (message.lines.length === 0) return Promise.resolve([]);
    this.waiting += 1;
    this.onDepthChange(1);
    return new Promise((resolve, reject) => {
      let firstWritten = false;
      const delivery: Delivery = {
        message,
        deadline: Date.now() + this.ttlMs,
        msgids: new Array<string | null>(message.lines.length).fill(null),
        unconfirmed: message.lines.length,
        settled: false,
        // A line written again after a reconnect is not the message's first write.
        onFirstWritten: message.onFirstWritten && (() => void (firstWritten || ((firstWritten = true), message.onFirstWritten!()))),
        resolve,
        reject,
      };
      const key = this.connection.casefold(message.target);
      let lane = this.lanes.get(key);
      if (!lane) this.lanes.set(key, (lane = { key, lines: [], pumping: false }));
      for (let index = 0; index < message.lines.length; index++) lane.lines.push({ delivery, index, written: false });
      this.pump(lane);
    });
  }

  /** Writes the lane's unwritten lines in order, each once the connection is up, joined, and under the in-flight bound. */
  private pump(lane: Lane): void {
    if (lane.pumping) return;
    lane.pumping = true;
    void this.run(lane).finally(() => {
      lane.pumping = false;
      // A line may have been handed back (its link dropped) just as the loop ended.
      if (this.nextOf(lane)) this.pump(lane);
      else this.dropIfIdle(lane);
    });
  }

  private async run(lane: Lane): Promise<void> {
    for (let line = this.nextOf(lane); line; line = this.nextOf(lane)) {
      const delivery = line.delivery;
      const { target, channelKey } = delivery.message;
      const remaining = delivery.deadline - Date.now();
      if (remaining <= 0) {
        const why = this.connection.state === "connected" ? "it waited too long behind your earlier messages (IRC flood control)" : "your IRC connection did not come back in time";
        this.fail(lane, delivery, new IrcFailure("expired", `${why}; it was not sent`));
        continue;
      }
      try {
        if (Date.now() < this.closingUntil) await new Promise((r) => setTimeout(r, this.closingUntil - Date.now()));
        await this.connection.whenConnected(remaining);
        if (isChannelName(target, this.connection.chanTypes)) await this.connection.join(target, channelKey);
      } catch (err) {
        if (isRetryable(err)) this.noteClosing();
        else this.fail(lane, delivery, err as Error);
        continue;
      }
      await this.slot();
      // While it waited, the link may have dropped (handing back earlier lines), or the message failed or expired.
      if (delivery.settled || this.nextOf(lane) !== line || Date.now() >= delivery.deadline) {
        this.release();
        continue;
      }
      this.write(lane, line);
    }
  }

  private write(lane: Lane, line: Line): void {
    const { delivery, index } = line;
    const { kind, target, lines, tags } = delivery.message;
    line.written = true;
    let sent: Promise<string | null>;
    try {
      sent = this.connection.send(kind, target, lines[index], index === 0 ? tags : undefined, index === 0 ? delivery.onFirstWritten : undefined);
    } catch (err) {
      sent = Promise.reject(err);
    }
    sent.then(
      (msgid) => {
        this.release();
        this.remove(lane, line);
        if (delivery.settled) return;
        delivery.msgids[index] = msgid;
        delivery.unconfirmed -= 1;
        if (delivery.unconfirmed === 0) this.settle(lane, delivery, null);
      },
      (err: Error) => {
        this.release();
        if (delivery.settled) return this.remove(lane, line);
        if (!isRetryable(err)) return this.fail(lane, delivery, err);
        // Not confirmed: handed back to be written again, before any later line of the lane.
        line.written = false;
        this.noteClosing();
        this.pump(lane);
      },
    );
  }

  /** The first unwritten line of the lane, if any (unconfirmed lines before it are on their way). */
  private nextOf(lane: Lane): Line | undefined {
    for (const line of lane.lines) if (!line.written) return line;
    return undefined;
  }

  /** The message fails: its lines still to write are dropped; those on their way are answered and ignored. */
  private fail(lane: Lane, delivery: Delivery, err: Error): void {
    if (delivery.settled) return;
    lane.lines = lane.lines.filter((l) => l.delivery !== delivery);
    this.settle(lane, delivery, err);
  }

  private settle(lane: Lane, delivery: Delivery, err: Error | null): void {
    delivery.settled = true;
    this.waiting -= 1;
    this.onDepthChange(-1);
    if (err) delivery.reject(err);
    else delivery.resolve(delivery.msgids);
    this.dropIfIdle(lane);
  }

  private remove(lane: Lane, line: Line): void {
    const i = lane.lines.indexOf(line);
    if (i >= 0) lane.lines.splice(i, 1);
    this.dropIfIdle(lane);
  }

  private dropIfIdle(lane: Lane): void {
    if (lane.lines.length === 0 && !lane.pumping && this.lanes.get(lane.key) === lane) this.lanes.delete(lane.key);
  }

  /** A write failed as disconnected: if the connection has not noticed its close yet, give it a moment rather than spin. */
  private noteClosing(): void {
    if (this.connection.state === "connected") this.closingUntil = Date.now() + CLOSING_PAUSE_MS;
  }

  /** Waits for room under the in-flight bound (first come, first served across the connection's lanes). */
  private slot(): Promise<void> {
    if (this.inFlight < this.maxInFlight) {
      this.inFlight += 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.slotWaiters.push(resolve));
  }

  private release(): void {
    const next = this.slotWaiters.shift();
    if (next) next();
    else this.inFlight -= 1;
  }
}
