/**
 * Recovered history: when a connection of ours joins a channel, the server may replay the
 * channel's recent lines (InspIRCd's chanhistory with channel mode +H, in a `chathistory`
 * batch, stamped with server-time and keeping each line's msgid). Lines said while the bridge
 * was away are among them; so are lines it delivered already. Each channel's position (the time
 * and msgid of the last line that went through; after a restart, the last that reached Matrix:
 * see ChannelPositions) is kept, and a replayed line is new only if it comes after it:
 *
 * - where the position's msgid is in the replay, exactly the lines after it are new (the
 *   server's order);
 * - otherwise by time: InspIRCd replays whole seconds (12:00:05.000 for a line said at
 *   12:00:05.678), so a line of the same second as the position is new only if it has a msgid
 *   the bridge has not seen (lines without one are skipped there: a repeat is worse than a gap);
 * - with no position at all (a channel never bridged before) nothing is: old history is not
 *   news to a new room;
 * - a msgid the bridge has seen (delivered live, or recovered already) is never new.
 */
import { getLogger } from "../logging.js";
import { metrics } from "../metrics/metrics.js";
import type { DataStore } from "../store/DataStore.js";
import type { IrcMessage } from "./connectionTypes.js";

const log = getLogger("irc/history");

/** Where a channel's traffic got to: the last line that went through. */
export interface ChannelPosition {
  /** Its server-time (ms since the epoch). */
  time: number;
  msgid: string | null;
}

export const POSITION_KIND = "channelPosition";
/** How long a moved position may wait in memory before it is written. */
const FLUSH_AFTER_MS = 2_000;

/**
 * The lines of a replay that the bridge has not delivered, in order. `seen` tells whether a
 * msgid went through already (in this process).
 */
export function linesToRecover(lines: IrcMessage[], position: ChannelPosition | null, seen: (msgid: string) => boolean): IrcMessage[] {
  if (!position) return [];
  let at = -1;
  if (position.msgid !== null) for (let i = lines.length - 1; i >= 0 && at < 0; i--) if (lines[i].tags.msgid === position.msgid) at = i;
  const after = lines.slice(at + 1);
  return after.filter((line) => {
    const msgid = line.tags.msgid;
    if (msgid && seen(msgid)) return false;
    if (line.time === undefined) return false; // cannot be placed
    if (at >= 0) return true;
    if (line.time > position.time) return true;
    // A whole-second time covers the second after it: the line may be later than the position.
    const sameSecond = line.time % 1000 === 0 && line.time + 1000 > position.time;
    return sameSecond && Boolean(msgid);
  });
}

/**
 * The position of each channel of one network, twice over:
 * - where its lines got to in this process (every line that went through, live or recovered):
 *   what a replay in this process is measured against;
 * - where its lines got to in Matrix (the last line delivered there): what is stored, in the
 *   store's keyed records, at most every FLUSH_AFTER_MS (never per line) and on `flush()` at
 *   shutdown, and what the next start begins from. Lines still waiting for the homeserver when
 *   the bridge stopped are after it, so they come back with the replay.
 * A crash loses at most the last moves; the replay's msgids are then checked against the
 * message links before anything is sent (IrcToMatrix).
 */
export class ChannelPositions {
  private readonly seen = new Map<string, ChannelPosition>();
  private readonly delivered = new Map<string, ChannelPosition>();
  private readonly dirty = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: DataStore,
    private readonly networkId: string,
    private readonly flushAfterMs = FLUSH_AFTER_MS,
  ) {}

  private key(channel: string): string {
    return `${this.networkId} ${channel}`;
  }

  async load(): Promise<void> {
    const prefix = `${this.networkId} `;
    for (const record of await this.store.listRecords<ChannelPosition>(POSITION_KIND)) {
      const value = record.value;
      if (!record.key.startsWith(prefix) || typeof value?.time !== "number") continue;
      const position = { time: value.time, msgid: typeof value.msgid === "string" ? value.msgid : null };
      this.seen.set(record.key.slice(prefix.length), position);
      this.delivered.set(record.key.slice(prefix.length), position);
    }
  }

  /** Where the channel's (casefolded) lines got to, or null when none has gone through yet. */
  get(channel: string): ChannelPosition | null {
    return this.seen.get(channel) ?? null;
  }

  /** Where the channel's lines got to in Matrix, as stored (or to be). */
  deliveredTo(channel: string): ChannelPosition | null {
    return this.delivered.get(channel) ?? null;
  }

  /** A line of the channel went through, in the server's order (lines without server-time do not count). */
  advance(channel: string, msg: IrcMessage): void {
    moveTo(this.seen, channel, msg);
  }

  /** A line of the channel reached Matrix (or was found there already). */
  reachedMatrix(channel: string, msg: IrcMessage): void {
    if (!moveTo(this.delivered, channel, msg)) return;
    this.dirty.add(channel);
    this.timer ??= setTimeout(() => void this.flush(), this.flushAfterMs).unref();
  }

  /** Writes the moved positions now; resolves when they (and earlier writes) are stored. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const channels = [...this.dirty];
    this.dirty.clear();
    if (channels.length === 0) return this.writing;
    this.writing = this.writing.then(async () => {
      for (const channel of channels) {
        const position = this.delivered.get(channel);
        if (!position) continue;
        await this.store.putRecord(POSITION_KIND, this.key(channel), position).catch((err: Error) => {
          log.warn("Could not store a channel's position", { network: this.networkId, channel, error: err.message });
        });
      }
    });
    return this.writing;
  }
}

/** Moves a channel's position to `msg`; false for a line without server-time (it cannot be placed). */
function moveTo(positions: Map<string, ChannelPosition>, channel: string, msg: IrcMessage): boolean {
  if (msg.time === undefined) return false;
  const old = positions.get(channel);
  // A replayed line's whole-second time may be earlier than the live line before it.
  positions.set(channel, { time: Math.max(old?.time ?? 0, msg.time), msgid: msg.tags.msgid ?? null });
  return true;
}

/** The msgids that went through a channel (the ChannelBroker's memory of them). */
export interface SeenMsgids {
  hasSeen(channel: string, msgid: string): boolean;
  /** A line went through another way (recovered): its live copies, if any come, are late copies. */
  markSeen(channel: string, msgid: string): void;
}

/** What HistoryRecovery asks of the pool. */
export interface RecoveryHooks {
  /** Whether a connection of ours other than `conn` is in the channel (casefolded). */
  othersIn(conn: unknown, channel: string): boolean;
  /**
   * A test of whether a nick is, or was last, one of the bridge's own connections (their lines
   * came from Matrix); asked once per replay that recovers something.
   */
  ownNicks(): (nick: string) => boolean;
  /** Sends a recovered line on, as a channel line. */
  deliver(msg: IrcMessage): void;
}

/**
 * Decides what of a replay goes on. Only the replay of a connection that is alone of ours in the
 * channel counts (the bot rejoining at start-up, or after a kick): while another is in, the live
 * lines went through it, so a puppet joining later replays nothing.
 */
export class HistoryRecovery {
  constructor(
    private readonly networkId: string,
    readonly positions: ChannelPositions,
    private readonly seen: SeenMsgids,
    private readonly hooks: RecoveryHooks,
  ) {}

  /** A live line of the channel (casefolded) went through. */
  onLive(channel: string, msg: IrcMessage): void {
    this.positions.advance(channel, msg);
  }

  /** `conn` joined `channel` (casefolded) and the server replayed `lines`. */
  onReplay(conn: unknown, channel: string, lines: IrcMessage[]): void {
    if (this.hooks.othersIn(conn, channel)) {
      log.debug("History replayed to a connection joining beside another of ours; ignored", { network: this.networkId, channel, lines: lines.length });
      return;
    }
    const position = this.positions.get(channel);
    const fresh = linesToRecover(lines, position, (msgid) => this.seen.hasSeen(channel, msgid));
    // The replay ends at the server's latest line: that is where the channel is now.
    for (const line of lines) this.positions.advance(channel, line);
    let delivered = 0;
    const isOwn = fresh.length > 0 ? this.hooks.ownNicks() : () => false;
    for (const line of fresh) {
      if (line.tags.msgid) this.seen.markSeen(channel, line.tags.msgid);
      if (isOwn(line.nick)) continue;
      this.hooks.deliver(line);
      delivered += 1;
    }
    metrics.linesRecovered.inc({ network: this.networkId }, delivered);
    if (lines.length > 0) log.info("Channel history replayed on join", { network: this.networkId, channel, replayed: lines.length, recovered: delivered, known: position !== null });
  }
}
