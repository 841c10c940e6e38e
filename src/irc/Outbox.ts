/**
 * A Matrix user's messages on their way to IRC, in order. They wait here for flood control
 * and while the user's connection is down (reconnecting), for at most `ttlMs` each, then go
 * out in the order they were sent. They were acknowledged to the homeserver, so waiting is
 * bounded by age; `maxMessages` is only a safety bound. A line whose connection dropped before
 * the server confirmed it is sent again after the reconnect (at-least-once). A message that
 * cannot go (too old, the server refused the user for good, or refused the line) fails with a
 * reason the user is told.
 */
import { isChannelName } from "../format/ircText.js";
import { IrcFailure } from "./errors.js";
import type { IrcConnection, IrcMessageKind } from "./IrcConnection.js";

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

export class Outbox {
  /**
   * One lane per target (casefolded): order is kept per channel or nick, and one channel's
   * slow or failing join never holds the user's messages to other channels and PMs.
   */
  private readonly tails = new Map<string, Promise<unknown>>();
  private waiting = 0;

  constructor(
    private readonly connection: IrcConnection,
    private readonly maxMessages: number,
    private readonly ttlMs: number,
    private readonly onDepthChange: (delta: number) => void = () => undefined,
  ) {}

  get depth(): number {
    return this.waiting;
  }

  /** Resolves with the msgids of its lines once the message is on IRC; rejects with the reason it never will be. */
  send(message: OutgoingMessage): Promise<(string | null)[]> {
    if (this.waiting >= this.maxMessages) {
      return Promise.reject(new IrcFailure("queue_full", `${this.waiting} of your messages are already waiting to go to IRC, so this one was not sent`));
    }
    const deadline = Date.now() + this.ttlMs;
    this.waiting += 1;
    this.onDepthChange(1);
    const lane = this.connection.casefold(message.target);
    const run = (this.tails.get(lane) ?? Promise.resolve()).then(() => this.deliver(message, deadline)).finally(() => {
      this.waiting -= 1;
      this.onDepthChange(-1);
    });
    const tail = run.catch(() => undefined);
    this.tails.set(lane, tail);
    void tail.then(() => {
      if (this.tails.get(lane) === tail) this.tails.delete(lane);
    });
    return run;
  }

  /** Sends the lines in order; if the connection drops part-way, waits for it and goes on. */
  private async deliver(message: OutgoingMessage, deadline: number): Promise<(string | null)[]> {
    const msgids: (string | null)[] = [];
    let next = 0;
    while (next < message.lines.length) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        const why = this.connection.state === "connected" ? "it waited too long behind your earlier messages (IRC flood control)" : "your IRC connection did not come back in time";
        throw new IrcFailure("expired", `${why}; it was not sent`);
      }
      try {
        await this.connection.whenConnected(remaining);
        if (isChannelName(message.target, this.connection.chanTypes)) await this.connection.join(message.target, message.channelKey);
        for (; next < message.lines.length; next++) msgids.push(await this.connection.send(message.kind, message.target, message.lines[next], next === 0 ? message.tags : undefined, next === 0 ? message.onFirstWritten : undefined));
      } catch (err) {
        if (!(err instanceof IrcFailure) || err.fatal || !["disconnected", "join_timeout"].includes(err.code)) throw err;
      }
    }
    return msgids;
  }
}
