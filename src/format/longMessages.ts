/**
 * What happens to a message longer than the network's (or room's) `lineLimit`: with media
 * links (`media.publicUrl`), `MediaLinkPolicy` puts the text in the homeserver's media
 * repository and IRC gets the first line and `(full message at <link>)`; without them,
 * `SplitFallback` sends every line and tells the sender it was long.
 */
import type { MediaLinker } from "./msgtypes.js";
import { plainOf } from "./ircFormat.js";

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
  /** The message's event (a link to its text dies with its redaction). */
  eventId?: string;
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

/** The first line shown before the link is cut to this many characters. */
const FIRST_LINE_CHARS = 200;

/**
 * A long message as its first line and a link to the whole text (uploaded as text/plain by
 * `upload`, served through the bridge's signed media links). If the upload fails, every line
 * goes as with SplitFallback: the message is never lost for want of a link.
 */
export class MediaLinkPolicy implements LongMessagePolicy {
  constructor(
    private readonly upload: (text: string) => Promise<string>,
    private readonly linker: MediaLinker,
    private readonly fallback: LongMessagePolicy = new SplitFallback(),
    private readonly onUploadFailed: (err: Error) => void = () => undefined,
    private readonly uploadTimeoutMs = 5_000,
  ) {}

  async shorten(lines: string[], lineLimit: number, context: LongMessageContext): Promise<LongMessageResult> {
    const count = context.ircLines ?? lines.length;
    if (count <= lineLimit || !context.eventId) return this.fallback.shorten(lines, lineLimit, context);
    let mxc: string;
    try {
      // Inside the room's queue towards IRC: a slow homeserver may delay it only briefly.
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("upload timed out")), this.uploadTimeoutMs)));
      mxc = await Promise.race([this.upload(`${lines.map(plainOf).join("\n")}\n`), timeout]).finally(() => clearTimeout(timer));
    } catch (err) {
      this.onUploadFailed(err as Error);
      return this.fallback.shorten(lines, lineLimit, context);
    }
    const link = this.linker.link({ mxc, eventId: context.eventId, roomId: context.roomId, filename: "message.txt" });
    const chars = [...lines[0]];
    const first = chars.length > FIRST_LINE_CHARS ? `${chars.slice(0, FIRST_LINE_CHARS).join("").trimEnd()}…` : lines[0];
    return { lines: [`${first} (full message at ${link})`], notice: null };
  }
}

/** The line limit in force: the room's own (a state event) within the operator's maximum, else the network's. */
export function effectiveLineLimit(networkLimit: number, maxLimit: number, roomLimit: number | null): number {
  const wanted = roomLimit ?? networkLimit;
  return Math.max(1, Math.min(wanted, maxLimit));
}
