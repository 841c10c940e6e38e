/**
 * The IRCv3 lines that carry no text: TAGMSG (client tags only: reactions, typing) and REDACT
 * (draft/message-redaction), read from irc-framework's events into checked, typed events of
 * the connection. Lines of our own connection (echo-message) are not reported.
 */
import type { Client } from "irc-framework";
import type { IrcConnectionEvents } from "./connectionTypes.js";

/** The IRCv3 capability that lets a client take back its lines (REDACT). */
export const REDACTION_CAP = "draft/message-redaction";

interface Listener {
  isSelf(nick: string): boolean;
  emit<K extends keyof IrcConnectionEvents>(event: K, ...args: IrcConnectionEvents[K]): boolean;
}

const named = (...values: unknown[]) => values.every((v) => typeof v === "string" && v.length > 0);

/** The handlers of both (BridgeClient dispatches them; `connection` is the one the event belongs to). */
export const TAG_EVENTS: Record<string, (connection: Listener, e: any) => void> = {
  tagmsg(connection, e: { from_server?: boolean; nick?: unknown; target?: unknown; tags?: unknown }) {
    if (e.from_server || !named(e.nick, e.target) || connection.isSelf(e.nick as string) || typeof e.tags !== "object" || !e.tags) return;
    connection.emit("tagmsg", { nick: e.nick as string, target: e.target as string, tags: e.tags as Record<string, string> });
  },
  // irc-framework has no handler for REDACT: it reports it as an unknown command, parsed.
  "unknown command"(connection, command: { command?: string; nick?: string; params?: unknown[] }) {
    if (command.command?.toUpperCase() !== "REDACT") return;
    const [target, msgid, reason] = command.params ?? [];
    if (!named(command.nick, target, msgid) || connection.isSelf(command.nick as string)) return;
    connection.emit("redact", { nick: command.nick as string, target: target as string, msgid: msgid as string, reason: typeof reason === "string" ? reason : "" });
  },
};

/** The same handlers, as listeners of a client (for a client that is not a BridgeClient). */
export function listenForTagsAndRedactions(client: Client, connection: Listener): void {
  for (const [event, handler] of Object.entries(TAG_EVENTS)) client.on(event, (e: unknown) => handler(connection, e));
}
