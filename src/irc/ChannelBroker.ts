/**
 * Exactly-once delivery of channel traffic. With N Matrix users in a channel the bridge
 * receives every line N+1 times (once per connection); the broker lets one copy through.
 *
 * - Where the server tags lines with a `msgid` (IRCv3 message-tags), every connection's copy
 *   comes here and the first copy of each msgid wins: nothing is lost while at least one
 *   connection is in the channel, and order is kept (each connection sees the server's order).
 * - Otherwise one connection per channel is nominated (the bot's when it is there) and only
 *   its lines pass. When it drops, another connection in the channel takes over and first
 *   replays what it saw after the last line delivered, so lines around the hand-over are
 *   neither lost nor doubled.
 */
import { EventEmitter } from "node:events";
import { metrics } from "../metrics/metrics.js";
import type { IrcConnection, IrcMessage } from "./IrcConnection.js";

const MSGID_MEMORY = 20_000;
const HISTORY_PER_CHANNEL = 200;
/** How many connections behind the nominee keep a short history for a hand-over. */
const BACKUPS = 2;

interface Delivered {
  nick: string;
  kind: string;
  text: string;
  receivedAt: number;
}

const sameLine = (a: Delivered, b: Delivered) => a.nick === b.nick && a.kind === b.kind && a.text === b.text;

/** A set that forgets its oldest entries past `limit`. */
class RecentSet {
  private readonly items = new Set<string>();
  constructor(private readonly limit: number) {}
  /** Adds `key`; false when it was already there. */
  add(key: string): boolean {
    if (this.items.has(key)) return false;
    this.items.add(key);
    if (this.items.size > this.limit) this.items.delete(this.items.values().next().value as string);
    return true;
  }
}

export interface BrokerEvents {
  line: [IrcMessage];
}

export class ChannelBroker extends EventEmitter<BrokerEvents> {
  private readonly seenMsgids = new RecentSet(MSGID_MEMORY);
  private readonly nominee = new Map<string, IrcConnection>();
  private readonly backups = new Map<string, IrcConnection[]>();
  private readonly lastDelivered = new Map<string, Delivered>();
  private readonly history = new WeakMap<IrcConnection, Map<string, IrcMessage[]>>();

  constructor(
    private readonly networkId: string,
    /** Connections currently in a channel, best candidate first (the bot). */
    private readonly candidates: (channel: string) => IrcConnection[],
  ) {
    super();
  }

  /** A channel line as one connection received it. `channel` is casefolded. */
  onLine(conn: IrcConnection, channel: string, msg: IrcMessage): void {
    const msgid = msg.tags.msgid;
    if (msgid) {
      if (this.seenMsgids.add(`${channel}\u0000${msgid}`)) this.deliver(channel, msg);
      else metrics.linesDeduplicated.inc({ network: this.networkId });
      return;
    }
    if (this.currentNominee(channel) === conn) return this.deliver(channel, msg);
    metrics.linesDeduplicated.inc({ network: this.networkId });
    if (this.backups.get(channel)?.includes(conn)) this.remember(conn, channel, msg);
  }

  /** A connection dropped or left: hand its channels over now, before more lines arrive. */
  onConnectionLost(conn: IrcConnection): void {
    for (const [channel, nominee] of [...this.nominee]) {
      if (nominee === conn) {
        this.nominee.delete(channel);
        this.currentNominee(channel);
      }
    }
  }

  private currentNominee(channel: string): IrcConnection | undefined {
    const current = this.nominee.get(channel);
    if (current && current.state === "connected" && current.isJoined(channel)) return current;
    // Only here (on a change of nominee) are the candidates listed, never per line.
    const [next, ...rest] = this.candidates(channel);
    if (!next) {
      this.nominee.delete(channel);
      this.backups.delete(channel);
      return undefined;
    }
    this.nominee.set(channel, next);
    this.backups.set(channel, rest.slice(0, BACKUPS));
    if (current !== next) this.replayAfterHandOver(next, channel);
    return next;
  }

  private replayAfterHandOver(next: IrcConnection, channel: string): void {
    const seen = this.history.get(next)?.get(channel) ?? [];
    const last = this.lastDelivered.get(channel);
    if (!last) return;
    let start = -1;
    for (let i = seen.length - 1; i >= 0; i--) {
      if (sameLine(seen[i], last) && seen[i].receivedAt >= last.receivedAt - 5_000) {
        start = i + 1;
        break;
      }
    }
    const missed = start >= 0 ? seen.slice(start) : seen.filter((m) => m.receivedAt > last.receivedAt);
    this.history.get(next)?.delete(channel);
    for (const msg of missed) this.deliver(channel, msg);
  }

  private remember(conn: IrcConnection, channel: string, msg: IrcMessage): void {
    let channels = this.history.get(conn);
    if (!channels) this.history.set(conn, (channels = new Map()));
    const list = channels.get(channel) ?? [];
    list.push(msg);
    if (list.length > HISTORY_PER_CHANNEL) list.shift();
    channels.set(channel, list);
  }

  private deliver(channel: string, msg: IrcMessage): void {
    this.lastDelivered.set(channel, { nick: msg.nick, kind: msg.kind, text: msg.text, receivedAt: msg.receivedAt });
    this.emit("line", msg);
  }
}
