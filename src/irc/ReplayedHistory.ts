/** A channel's recent history as the server replays it when we join (IRCv3 `batch`). */
import type { IrcMessage } from "./connectionTypes.js";

/** The batch type servers replay a channel's recent history in (InspIRCd's chanhistory, Ergo). */
export const HISTORY_BATCH = "chathistory";
/** Most replayed lines kept from one batch (the last ones): a hostile server cannot make it grow without bound. */
const HISTORY_MAX_LINES = 1_000;

/** The lines of one history batch, as they are read. */
export class ReplayedHistory {
  readonly lines: IrcMessage[] = [];
  constructor(
    readonly id: string,
    readonly channel: string,
  ) {}
  add(msg: IrcMessage): void {
    this.lines.push(msg);
    if (this.lines.length > HISTORY_MAX_LINES) this.lines.shift();
  }
}

/**
 * The batch each connection is reading, kept beside the connection rather than in it: a batch
 * is rare and short, and a field costs every puppet. irc-framework runs a whole batch (start,
 * lines, end) at once when it ends, so a connection reads at most one at a time.
 */
const reading = new WeakMap<object, ReplayedHistory>();

/** A replayed-history batch starts on `connection`: its lines are collected, not relayed. */
export function historyStarts(connection: object, id: string, channel: string): void {
  reading.set(connection, new ReplayedHistory(id, channel));
}

/** A line of the batch being read (lines of any other batch are dropped). */
export function historyLine(connection: object, batchId: string, msg: IrcMessage): void {
  const history = reading.get(connection);
  if (history?.id === batchId) history.add(msg);
}

/** The batch ended: its lines, if it brought any. */
export function historyEnds(connection: object, id: string): { channel: string; lines: IrcMessage[] } | null {
  const history = reading.get(connection);
  reading.delete(connection);
  return history?.id === id && history.lines.length > 0 ? { channel: history.channel, lines: history.lines } : null;
}
