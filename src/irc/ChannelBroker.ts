/**
 * Exactly-once delivery of channel traffic. With N Matrix users in a channel the bridge
 * receives every line N+1 times (once per connection); the broker lets one copy through.
 *
 * - Where the server tags lines with a `msgid` (IRCv3 message-tags), every connection's copy
 *   comes here and the first copy of each msgid wins: nothing is lost while at least one
 *   connection is in the channel, and order is kept (each connection sees the server's order).
 * - Otherwise one connection per channel is nominated (the bot's when it is there) and only
 *   its lines pass. Up to BACKUPS other connections in the channel are backups, taken on as
 *   they read lines (so a connection that joined later becomes one as soon as there is room),
 *   and each is kept aligned with what was delivered *by position*: every line a backup reads
 *   is matched, in order, against the lines delivered (see Track). When the nominee drops or
 *   leaves, a backup takes over and replays exactly the lines it read that were not delivered,
 *   and skips its late copies of lines that were. Identical lines (`lol`, `x`, `lol`) are
 *   told apart by their place in each stream, never by searching for the latest equal text.
 */
import { EventEmitter } from "node:events";
import { getLogger } from "../logging.js";
import { metrics } from "../metrics/metrics.js";
import type { IrcConnection, IrcMessage } from "./IrcConnection.js";

const log = getLogger("irc/broker");

const MSGID_MEMORY = 20_000;
/** How many connections besides the nominee keep a history for a hand-over, per channel. */
const BACKUPS = 2;
/** Most lines a backup holds that the nominee has not delivered (a silently dead nominee). */
const HISTORY = 300;
/**
 * Copies of one line reach connections on this host within milliseconds: a line one side read
 * this long before the other read a later one is a line the other never will read.
 */
const LAG_MS = 10_000;
/** Until a backup is anchored (see Track), two copies are one line only if read this close. */
const SAME_COPY_MS = 1_000;
/** Recent lines delivered, to place a new backup's first line. */
const RECENT = 64;

const sameLine = (a: IrcMessage, b: IrcMessage) => a.nick === b.nick && a.kind === b.kind && a.text === b.text;

/**
 * One backup's alignment with the delivered stream. Both streams are the server's order, so
 * at most a few lines of either are unmatched at a time: the ones one side has read and the
 * other not yet. A line matched further on proves the unmatched ones before it were never
 * coming (the other side was not there, or it was its own line without echo-message).
 */
interface Track {
  conn: IrcConnection;
  /** Lines this backup read that the nominee has not delivered (yet), in order. */
  ahead: IrcMessage[];
  /** Lines delivered that this backup has not read (yet), in order. */
  behind: IrcMessage[];
  /**
   * Whether one of its lines has been matched with a delivered one. Until then its place in
   * the delivered stream is unknown (it joined a moment ago; the nominee may be a few lines
   * behind or ahead), so a match also needs the two copies read at about the same time.
   */
  anchored: boolean;
}

interface ChannelState {
  nominee: IrcConnection | undefined;
  backups: Track[];
  /** The last lines delivered, to place a new backup's first line: see `adopt`. */
  recent: IrcMessage[];
  /** After a hand-over: lines already delivered that the new nominee has not read yet. */
  skip: IrcMessage[];
  /** Whether the new nominee's place in `skip` is known (as for an anchored Track). */
  skipAnchored: boolean;
}

/** A set that forgets its oldest entries past `limit`. */
class RecentSet {
  private readonly items = new Set<string>();
  constructor(private readonly limit: number) {}
  has(key: string): boolean {
    return this.items.has(key);
  }
  /** Adds `key`; false when it was already there. */
  add(key: string): boolean {
    if (this.items.has(key)) return false;
    this.items.add(key);
    if (this.items.size > this.limit) this.items.delete(this.items.values().next().value as string);
    return true;
  }
}

/** Removes the entries of `list` read more than LAG_MS before `now`. */
function forgetOlderThan(list: IrcMessage[], now: number): void {
  let n = 0;
  while (n < list.length && list[n].receivedAt < now - LAG_MS) n++;
  if (n > 0) list.splice(0, n);
}

export interface BrokerEvents {
  line: [IrcMessage];
}

export class ChannelBroker extends EventEmitter<BrokerEvents> {
  private readonly seenMsgids = new RecentSet(MSGID_MEMORY);
  private readonly channels = new Map<string, ChannelState>();

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
      if (this.seenMsgids.add(`${channel}\u0000${msgid}`)) this.emit("line", msg);
      else metrics.linesDeduplicated.inc({ network: this.networkId });
      return;
    }
    const state = this.stateOf(channel);
    const nominee = this.currentNominee(channel, state);
    if (!nominee) return; // no connection of ours is in the channel any more
    if (nominee === conn) {
      if (this.alreadyDelivered(state, msg)) metrics.linesDeduplicated.inc({ network: this.networkId });
      else this.deliver(state, msg);
      return;
    }
    metrics.linesDeduplicated.inc({ network: this.networkId });
    const track = state.backups.find((t) => t.conn === conn);
    if (track) return this.backupRead(track, msg);
    if (state.backups.length >= BACKUPS) state.backups = state.backups.filter((t) => inChannel(t.conn, channel));
    if (state.backups.length < BACKUPS) state.backups.push(this.adopt(state, conn, msg));
  }

  /** Whether a line with this msgid went through in the channel (casefolded), as far as it remembers. */
  hasSeen(channel: string, msgid: string): boolean {
    return this.seenMsgids.has(`${channel}\u0000${msgid}`);
  }

  /** Whether a copy of a line with this msgid can be skipped unread (it went through): counted as deduplicated. */
  skipSeen(channel: string, msgid: string): boolean {
    if (!this.hasSeen(channel, msgid)) return false;
    metrics.linesDeduplicated.inc({ network: this.networkId });
    return true;
  }

  /** A line of the channel went through another way (recovered history): its live copies are late copies. */
  markSeen(channel: string, msgid: string): void {
    this.seenMsgids.add(`${channel}\u0000${msgid}`);
  }

  /** A connection dropped or left: hand its channels over now, before more lines arrive. */
  onConnectionLost(conn: IrcConnection): void {
    for (const [channel, state] of [...this.channels]) {
      state.backups = state.backups.filter((t) => t.conn !== conn);
      if (state.nominee === conn) this.handOver(channel, state, conn);
    }
  }

  /** How many lines each backup of a channel holds (its history), for tests and diagnostics. */
  historySizes(channel: string): number[] {
    return (this.channels.get(channel)?.backups ?? []).map((t) => t.ahead.length + t.behind.length);
  }

  private stateOf(channel: string): ChannelState {
    let state = this.channels.get(channel);
    if (!state) this.channels.set(channel, (state = { nominee: undefined, backups: [], recent: [], skip: [], skipAnchored: true }));
    return state;
  }

  private currentNominee(channel: string, state: ChannelState): IrcConnection | undefined {
    const current = state.nominee;
    if (current && inChannel(current, channel)) return current;
    return this.handOver(channel, state, current);
  }

  /**
   * Nominates a connection in the channel, preferring a backup (its alignment is known, so it
   * can replay what was missed and skip what was not), else the first candidate.
   */
  private handOver(channel: string, state: ChannelState, previous: IrcConnection | undefined): IrcConnection | undefined {
    // Only here (on a change of nominee) are the candidates listed, never per line.
    const candidates = this.candidates(channel).filter((c) => c !== previous);
    state.backups = state.backups.filter((t) => candidates.includes(t.conn));
    // An anchored backup's unmatched lines start right after the last line delivered, so the
    // one that read most of them is best; then a live link (fewest delivered lines unread);
    // then the candidates' order (the bot first).
    const score = (t: Track) => [t.anchored ? 0 : 1, -t.ahead.length, t.behind.length, candidates.indexOf(t.conn)];
    const better = (a: Track, b: Track) => {
      const [x, y] = [score(a), score(b)];
      return x[0] - y[0] || x[1] - y[1] || x[2] - y[2] || x[3] - y[3];
    };
    const best = state.backups.reduce<Track | undefined>((a, b) => (!a || better(b, a) < 0 ? b : a), undefined);
    const next = best?.conn ?? candidates[0];
    if (!next) {
      this.channels.delete(channel);
      return undefined;
    }
    state.nominee = next;
    state.backups = state.backups.filter((t) => t !== best);
    // Lines delivered that the new nominee may still read: known exactly for an anchored
    // backup; otherwise the last ones delivered, each matched only by a copy read about as early.
    state.skip = best?.anchored ? best.behind : state.recent.slice();
    state.skipAnchored = best?.anchored ?? false;
    const replay = best?.ahead ?? [];
    if (previous) {
      log.info("Another connection delivers the channel now", { network: this.networkId, channel, replayed: replay.length });
      metrics.linesReplayed.inc({ network: this.networkId }, replay.length);
    }
    for (const msg of replay) this.deliver(state, msg);
    return next;
  }

  /** True for the new nominee's late copy of a line the previous one delivered. */
  private alreadyDelivered(state: ChannelState, msg: IrcMessage): boolean {
    if (state.skip.length === 0) return false;
    forgetOlderThan(state.skip, msg.receivedAt);
    const k = state.skip.findIndex((d) => sameLine(d, msg) && (state.skipAnchored || Math.abs(d.receivedAt - msg.receivedAt) < SAME_COPY_MS));
    if (k < 0) return false;
    state.skipAnchored = true;
    state.skip.splice(0, k + 1);
    return true;
  }

  /**
   * A connection becomes a backup at the first line it reads. The nominee may have delivered
   * that very line a moment earlier (its socket was read first), and more after it: then the
   * new backup starts behind, at the copy read at about the same time (the latest, if several).
   */
  private adopt(state: ChannelState, conn: IrcConnection, first: IrcMessage): Track {
    let at = -1;
    for (let i = state.recent.length - 1; i >= 0; i--) {
      const gap = Math.abs(state.recent[i].receivedAt - first.receivedAt);
      if (sameLine(state.recent[i], first) && gap < SAME_COPY_MS && (at < 0 || gap < Math.abs(state.recent[at].receivedAt - first.receivedAt))) at = i;
    }
    return at < 0 ? { conn, ahead: [first], behind: [], anchored: false } : { conn, ahead: [], behind: state.recent.slice(at + 1), anchored: true };
  }

  /** A backup read a line: it either catches up with a delivered one, or is ahead of the nominee. */
  private backupRead(track: Track, msg: IrcMessage): void {
    this.align(track, msg, track.behind, track.ahead);
  }

  /**
   * The nominee delivered a line: each backup either had read it already, or is behind. (What
   * the backup read long before the nominee read this line, the nominee has had: it was
   * delivered, or was the nominee's own line. A dead nominee delivers nothing, so keeps all.)
   */
  private nomineeDelivered(track: Track, msg: IrcMessage): void {
    this.align(track, msg, track.ahead, track.behind);
  }

  /**
   * One side (backup or nominee) read `msg`. If the other side's unmatched lines hold it, the
   * two streams align there: lines before it on either side were never coming to the other,
   * so both lists are cut. Otherwise it waits in this side's own list, bounded.
   */
  private align(track: Track, msg: IrcMessage, otherSide: IrcMessage[], ownSide: IrcMessage[]): void {
    forgetOlderThan(otherSide, msg.receivedAt);
    const k = otherSide.findIndex((line) => this.matches(track, line, msg));
    if (k >= 0) {
      track.anchored = true;
      otherSide.splice(0, k + 1);
      ownSide.length = 0;
      return;
    }
    ownSide.push(msg);
    if (ownSide.length > HISTORY) ownSide.shift();
  }

  private matches(track: Track, a: IrcMessage, b: IrcMessage): boolean {
    return sameLine(a, b) && (track.anchored || Math.abs(a.receivedAt - b.receivedAt) < SAME_COPY_MS);
  }

  private deliver(state: ChannelState, msg: IrcMessage): void {
    for (const track of state.backups) this.nomineeDelivered(track, msg);
    state.recent.push(msg);
    if (state.recent.length > RECENT) state.recent.shift();
    this.emit("line", msg);
  }
}

const inChannel = (conn: IrcConnection, channel: string) => conn.state === "connected" && conn.isJoined(channel);
