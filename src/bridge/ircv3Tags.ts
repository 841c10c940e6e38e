/**
 * The IRCv3 client tags the bridge reads and writes, as pure functions: reactions
 * (`+draft/react`, `+draft/unreact`, with the reacted-to line's msgid in `+draft/reply` and
 * `+reply`), typing (`+typing`), and how a reaction is remembered among the message links.
 */
import type { MatrixEvent } from "../matrix/DurableAppService.js";

export type TypingState = "active" | "paused" | "done";

/** The tags of a TAGMSG that reacts to (or takes back a reaction to) the line `msgid`. */
export function reactionTags(msgid: string, key: string, undo = false): Record<string, string> {
  // Both reply tags: `+reply` is the ratified name, most clients still read `+draft/reply`.
  return { [undo ? "+draft/unreact" : "+draft/react"]: key, "+draft/reply": msgid, "+reply": msgid };
}

/** A reaction (or un-reaction) a TAGMSG carries, or null when it carries none or names no line. */
export function readReaction(tags: Record<string, string>): { key: string; msgid: string; undo: boolean } | null {
  const msgid = tags["+reply"] || tags["+draft/reply"];
  const react = tags["+draft/react"] ?? tags["+react"];
  const unreact = tags["+draft/unreact"] ?? tags["+unreact"];
  if (!msgid) return null;
  if (react) return { key: react, msgid, undo: false };
  if (unreact) return { key: unreact, msgid, undo: true };
  return null;
}

/** The typing state a TAGMSG carries, if any. */
export function readTyping(tags: Record<string, string>): TypingState | null {
  const value = tags["+typing"] ?? tags["+draft/typing"];
  return value === "active" || value === "paused" || value === "done" ? value : null;
}

/**
 * A reaction is kept among the message links (bounded and pruned with them) under a name that
 * no server msgid looks like: who reacted (a Matrix user ID, or an IRC nick casefolded), to
 * which line, with what. Un-reacting on either side finds it by that name, or by the
 * reaction's event ID.
 */
const PREFIX = "react:";

export function reactionLinkId(who: string, msgid: string, key: string): string {
  return PREFIX + JSON.stringify([who, msgid, key]);
}

export function parseReactionLinkId(id: string): { who: string; msgid: string; key: string } | null {
  if (!id.startsWith(PREFIX)) return null;
  try {
    const [who, msgid, key] = JSON.parse(id.slice(PREFIX.length)) as unknown[];
    return typeof who === "string" && typeof msgid === "string" && typeof key === "string" ? { who, msgid, key } : null;
  } catch {
    return null;
  }
}

/** What an `m.reaction` event annotates: the event and the key, or null for anything else. */
export function annotationOf(event: MatrixEvent): { eventId: string; key: string } | null {
  const relation = (event.content as { "m.relates_to"?: { rel_type?: unknown; event_id?: unknown; key?: unknown } } | undefined)?.["m.relates_to"];
  if (relation?.rel_type !== "m.annotation" || typeof relation.event_id !== "string" || typeof relation.key !== "string" || !relation.key) return null;
  return { eventId: relation.event_id, key: relation.key };
}

/** The event a redaction takes back: `content.redacts` (room v11) or the top-level `redacts` (earlier versions). */
export function redactedEventId(event: MatrixEvent): string | null {
  const inContent = (event.content as { redacts?: unknown } | undefined)?.redacts;
  const id = typeof inContent === "string" ? inContent : event.redacts;
  return typeof id === "string" && id ? id : null;
}
