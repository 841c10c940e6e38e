/**
 * The IRC lines a Matrix message becomes on one network, for channels and PMs alike: its HTML
 * or body as IRC text (pills as nicks, reply fallbacks removed), a reply addressed `nick: `
 * with the replied-to line's msgid as `+reply`/`+draft/reply` tags, an edit as the least
 * surprising line (format/edits.ts, per the network's `edits`). It remembers the text each
 * recent message was sent as (bounded): that is what an edit is compared with.
 */
import type { BridgeConfig } from "../config/schema.js";
import { editLine } from "../format/edits.js";
import { toIrcLines } from "../format/lines.js";
import { ircLinesOf, type TextContent } from "../format/matrixContent.js";
import { fallbackSender, relationOf } from "../format/replies.js";

/** How many sent texts are remembered for edits. */
const REMEMBERED_TEXTS = 10_000;

export interface TextSources {
  /** The IRC nick a Matrix user has on a network: their puppet's, or a ghost's own nick. */
  nickOf(networkId: string, userId: string): string | null;
  /** Who sent an event (for the nick a reply is addressed to); null if it cannot be read. */
  senderOf(roomId: string, eventId: string): Promise<string | null>;
  /** The IRC msgid a Matrix event was bridged as on a network, if known. */
  msgidOf(networkId: string, eventId: string): Promise<string | null>;
}

export interface OutgoingLines {
  lines: string[];
  tags?: Record<string, string>;
}

export class OutgoingText {
  private readonly sent = new Map<string, string>();
  /** Who sent recent events (both ways): most replies answer one, and need no homeserver call. */
  private readonly senders = new Map<string, string>();

  constructor(
    private readonly config: BridgeConfig,
    private readonly sources: TextSources,
  ) {}

  /** Null: nothing to send (an empty message, an unchanged edit, edits off). `address`: prefix a reply with the nick. */
  async linesFor(networkId: string, roomId: string, eventId: string, sender: string, content: TextContent & Record<string, unknown>, address = true): Promise<OutgoingLines | null> {
    const network = this.config.networks[networkId];
    if (!network) return null;
    const nickOf = (userId: string) => this.sources.nickOf(networkId, userId);
    const relation = relationOf(content);
    if (relation.replaces) {
      const replacement = content["m.new_content"];
      if (!replacement || typeof replacement !== "object") return null;
      const after = ircLinesOf(replacement as TextContent, nickOf).join("\n");
      const before = this.sent.get(`${networkId}\u0000${relation.replaces}`);
      // Without the original's text (sent before a restart) a diff cannot be made: the full text.
      const line = editLine(before ?? "", after, before === undefined && network.edits === "diff" ? "full" : network.edits);
      if (line === null) return null;
      this.remember(networkId, relation.replaces, after);
      return { lines: toIrcLines(line) };
    }
    this.noteSender(eventId, sender);
    const lines = ircLinesOf(content, nickOf);
    if (lines.length === 0) return null;
    this.remember(networkId, eventId, lines.join("\n"));
    if (!relation.replyTo) return { lines };
    if (address) {
      const repliedTo =
        this.senders.get(relation.replyTo) ?? (await this.sources.senderOf(roomId, relation.replyTo).catch(() => null)) ?? (typeof content.body === "string" ? fallbackSender(content.body) : null);
      // Replying to oneself needs no address (it would only highlight one's own nick).
      const nick = repliedTo && repliedTo !== sender ? nickOf(repliedTo) : null;
      if (nick && !lines[0].toLowerCase().startsWith(`${nick.toLowerCase()}:`)) lines[0] = `${nick}: ${lines[0]}`;
    }
    const msgid = await this.sources.msgidOf(networkId, relation.replyTo).catch(() => null);
    return { lines, ...(msgid ? { tags: { "+reply": msgid, "+draft/reply": msgid } } : {}) };
  }

  /** An event and its sender (a ghost's line delivered into Matrix, a Matrix user's message). */
  noteSender(eventId: string, userId: string): void {
    bounded(this.senders, eventId, userId);
  }

  private remember(networkId: string, eventId: string, text: string): void {
    bounded(this.sent, `${networkId}\u0000${eventId}`, text);
  }
}

/** Sets a key as the newest, forgetting the oldest beyond REMEMBERED_TEXTS. */
function bounded(map: Map<string, string>, key: string, value: string): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > REMEMBERED_TEXTS) map.delete(map.keys().next().value!);
}
