/**
 * Admin commands that carry a secret (a password, a channel key), and the one rule for them:
 * a message that carries one, as sent or as an edit (`m.replace`, whose `m.new_content` is
 * the text it now says), never reaches the journal with it and is redacted once read.
 *
 * An edit in an admin room is read as the command its new text says: editing
 * `!storepass old` into `!storepass new` stores `new`, like sending it again.
 */
import type { MatrixEvent } from "../../matrix/DurableAppService.js";
import { parseCommand, words } from "./parse.js";

/** Marks a journal copy whose secret was left out (see journalCopy); its value names the command. */
export const SCRUBBED = "net.matrix_irc_bridge.password_not_kept";

/**
 * Whether a command's arguments (after the network, if one was named) carry a secret. A
 * command added here is scrubbed and redacted everywhere; name new secret-bearing commands here.
 */
export const SECRET_ARGUMENTS: Record<string, (rest: string) => boolean> = {
  storepass: () => true,
  // !join <#channel> [key]: the second word is the key.
  join: (rest) => words(rest).length >= 2,
};

interface TextContent {
  body?: unknown;
  "m.new_content"?: { body?: unknown };
  "m.relates_to"?: { rel_type?: unknown; event_id?: unknown };
}

/** The event an edit replaces, or null when the event is not an edit. */
export function editedEventId(event: MatrixEvent): string | null {
  const relation = (event.content as TextContent | undefined)?.["m.relates_to"];
  return relation?.rel_type === "m.replace" && typeof relation.event_id === "string" ? relation.event_id : null;
}

/** The text a message says: for an edit, its new text (the body is a "* " fallback). */
export function commandText(event: MatrixEvent): string | null {
  if (event.type !== "m.room.message") return null;
  const content = event.content as TextContent | undefined;
  const text = editedEventId(event) !== null ? content?.["m.new_content"]?.body : content?.body;
  return typeof text === "string" ? text : null;
}

/**
 * The secret-bearing command an event carries (original or edit), or null. Without the
 * network IDs, a first word that might name a network counts as an argument, so a keyless
 * `!join libera #chan` is taken for one with a key: scrubbing too much is the safe side.
 */
export function secretCommandIn(event: MatrixEvent, networkIds: string[] = []): string | null {
  const scrubbed = (event.content as Record<string, unknown> | undefined)?.[SCRUBBED];
  if (scrubbed) return typeof scrubbed === "string" ? scrubbed : "storepass"; // `true`: journals before edits were scrubbed
  const content = event.content as TextContent | undefined;
  // The fallback body of an edit ("* !storepass x") and the new text are both checked.
  const texts = [commandText(event), typeof content?.body === "string" ? content.body.replace(/^\s*\*\s*/, "") : null];
  for (const text of texts) {
    const parsed = text === null ? null : parseCommand(text, networkIds);
    if (parsed && SECRET_ARGUMENTS[parsed.name]?.(parsed.rest)) return parsed.name;
  }
  return null;
}

/**
 * The journal's copy of an event: a message carrying a secret keeps only its ID, sender,
 * room and relation, so no secret is ever written to disk in clear. If the bridge stops
 * before handling it, the message is still redacted and the user asked to send it again.
 */
export function journalCopy(event: MatrixEvent, networkIds: string[] = []): MatrixEvent {
  if (event.type !== "m.room.message") return event;
  const name = secretCommandIn(event, networkIds);
  if (!name) return event;
  const relation = editedEventId(event);
  const content: Record<string, unknown> = { msgtype: "m.text", body: `!${name}`, [SCRUBBED]: name };
  if (relation) content["m.relates_to"] = { rel_type: "m.replace", event_id: relation };
  return { ...event, content, unsigned: undefined };
}
