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
