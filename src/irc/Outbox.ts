/**
 * A Matrix user's messages on their way to IRC, in order. While the user's connection is
 * down (reconnecting), messages wait here, up to `maxMessages` and for at most `ttlMs`; then
 * they go out in the order they were sent. A message that cannot wait (queue full, too
 * old, the server refused the user for good) fails with a reason the user is told.
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
}

export class Outbox {
  private tail: Promise<unknown> = Promise.resolve();
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
      return Promise.reject(new IrcFailure("queue_full", `${this.waiting} messages are already waiting for your IRC connection to come back`));
    }
    const deadline = Date.now() + this.ttlMs;
    this.waiting += 1;
    this.onDepthChange(1);
    const run = this.tail.then(() => this.deliver(message, deadline)).finally(() => {
      this.waiting -= 1;
      this.onDepthChange(-1);
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Sends the lines in order; if the connection drops part-way, waits for it and goes on. */
  private async deliver(message: OutgoingMessage, deadline: number): Promise<(string | null)[]> {
    const msgids: (string | null)[] = [];
    let next = 0;
    while (next < message.lines.length) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new IrcFailure("expired", "your IRC connection did not come back in time");
      try {
        await this.connection.whenConnected(remaining);
        if (isChannelName(message.target, this.connection.chanTypes)) await this.connection.join(message.target, message.channelKey);
        for (; next < message.lines.length; next++) msgids.push(await this.connection.send(message.kind, message.target, message.lines[next]));
      } catch (err) {
        if (!(err instanceof IrcFailure) || err.fatal || !["disconnected", "join_timeout"].includes(err.code)) throw err;
      }
    }
    return msgids;
  }
}
