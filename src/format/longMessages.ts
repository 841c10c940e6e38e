/**
 * What happens to a message longer than the network's (or room's) `lineLimit`. The issue
 * wants the text in the homeserver's media repository and IRC to get the first line and
 * `(full message at <link>)`; media links are another part of the bridge, so this is an
 * interface: `SplitFallback` (send every line, tell the sender it was long) until a
 * `MediaLinkPolicy` plugs in.
 */
export interface LongMessageResult {
  /** The lines to send. */
  lines: string[];
  /** What the sender is told (null: nothing to say). */
  notice: string | null;
}

export interface LongMessageContext {
  roomId: string;
  sender: string;
  /** How many IRC lines the message takes once long lines are split (default: its line count). */
  ircLines?: number;
}

export interface LongMessagePolicy {
  shorten(lines: string[], lineLimit: number, context: LongMessageContext): Promise<LongMessageResult>;
}

/** The fallback while there are no media links: every line goes, and the sender hears why it was a wall. */
export class SplitFallback implements LongMessagePolicy {
  async shorten(lines: string[], lineLimit: number, context?: LongMessageContext): Promise<LongMessageResult> {
    const count = context?.ircLines ?? lines.length;
    if (count <= lineLimit) return { lines, notice: null };
    return {
      lines,
      notice: `your message was ${count} lines long on IRC (more than this room's limit of ${lineLimit}), so it reached IRC as ${count} separate lines; consider a paste link for long texts.`,
    };
  }
}

/** The line limit in force: the room's own (a state event) within the operator's maximum, else the network's. */
export function effectiveLineLimit(networkLimit: number, maxLimit: number, roomLimit: number | null): number {
  const wanted = roomLimit ?? networkLimit;
  return Math.max(1, Math.min(wanted, maxLimit));
}
