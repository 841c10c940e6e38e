/**
 * The lines every connection reads most (a PRIVMSG or NOTICE from a person: each relayed
 * line, and the echo of each line we send), handed to the client as irc-framework's own event
 * without the library's dispatch around it. For every line the library runs its raw and parsed
 * middleware, copies the command with lodash, looks its handler up, emits an "all" event and a
 * separate "message" copy, and only then the event itself: in CPU profiles of a steady few
 * lines a second (bench/relayCost.ts), about a sixth of the JavaScript run per relayed line.
 *
 * The line is parsed as the library's parser parses it (ircLine.ts) and the event built as its
 * messaging handler builds it (same fields, same CTCP and STATUSMSG rules). Anything else is left to the library:
 * another command, a line from the server itself, a line inside a batch, a CTCP other than
 * ACTION, and every line while something listens for raw lines or for the library's extra
 * "message" event, or has added middleware.
 *
 * What the library would also have done and this does not: reset its ping timeout (off here:
 * `ping_timeout` is 0, LinkWatch watches the link) and tell listeners of its command handler
 * or connection (`all`, `raw`, `message`), which nothing of ours adds. Check both if that changes.
 */
import { parseIrcLine } from "./ircLine.js";

export type PlainMessageKind = "privmsg" | "notice" | "action";

/** irc-framework's event for a PRIVMSG, NOTICE or ACTION, field for field. */
export interface PlainMessageEvent {
  from_server: boolean;
  nick: string;
  ident: string;
  hostname: string;
  target: string;
  group: string | undefined;
  message: string;
  tags: Record<string, string>;
  time: number | undefined;
  account: string | undefined;
  batch: undefined;
}

/** What of irc-framework's client this needs. */
export interface PlainMessageClient {
  network: { supports(name: string): unknown; extractTargetGroup(target: string): { target: string; target_group: string } | null };
  raw_middleware: { stack: unknown[] };
  parsed_middleware: { stack: unknown[] };
  listenerCount(event: string): number;
  emit(event: string, ...args: unknown[]): boolean;
}

const NUMBER = /^[0-9.]{1,}$/;

/** The command word of a line, found without parsing it: after the tags and the prefix. */
function commandOf(line: string): string {
  let start = 0;
  if (line.charCodeAt(0) === 0x40 /* @ */) start = line.indexOf(" ") + 1;
  while (line.charCodeAt(start) === 0x20) start++;
  if (line.charCodeAt(start) === 0x3a /* : */) start = line.indexOf(" ", start) + 1;
  if (start === 0) return ""; // no prefix (a line from the server itself), or a tags token with nothing after it
  while (line.charCodeAt(start) === 0x20) start++;
  const end = line.indexOf(" ", start);
  return end === -1 ? "" : line.slice(start, end);
}

/** irc-framework's IrcCommand.getServerTime. */
function serverTime(tags: Record<string, string>): number | undefined {
  const tag = tags.time;
  if (!tag) return undefined;
  const time = Date.parse(tag) || undefined;
  if (!time && NUMBER.test(tag)) return new Date(Number(tag) * 1000).getTime();
  return time;
}

/** Whether `target` starts with one of the STATUSMSG prefixes (the library keeps them as a string, then an array of characters). */
function startsWithStatusPrefix(target: string, statusMsg: unknown): boolean {
  if (target.length === 0 || (typeof statusMsg !== "string" && !Array.isArray(statusMsg))) return false;
  return statusMsg.indexOf(target[0]) !== -1;
}

/** The event irc-framework would emit for `line`, or null when the line is one left to it. */
export function readPlainMessage(line: string, network: PlainMessageClient["network"]): { kind: PlainMessageKind; event: PlainMessageEvent } | null {
  const command = commandOf(line);
  if (command !== "PRIVMSG" && command !== "NOTICE") return null;
  const parsed = parseIrcLine(line);
  if (!parsed || parsed.command !== command || parsed.params.length < 2 || !parsed.nick) return null;
  // The tags are a fresh plain object, as the library's lodash copy is (a line with a tag named
  // __proto__, which that copy keeps, parses to null above: the library reads it). Batched lines
  // are the library's to hold back.
  const tags = parsed.tags;
  if (tags.batch) return null;
  const message = parsed.params[parsed.params.length - 1];
  let target = parsed.params[0];
  const ctcp = message.charAt(0) === "\x01" && message.charAt(message.length - 1) === "\x01";
  let kind: PlainMessageKind = command === "PRIVMSG" ? "privmsg" : "notice";
  let text = message;
  if (ctcp) {
    if (kind === "notice" || message.slice(1, -1).split(" ")[0].toUpperCase() !== "ACTION") return null;
    kind = "action";
    text = message.substring(8, message.length - 1);
  }
  let group: string | undefined;
  // Asked of the library only when the target starts with a STATUSMSG prefix ("@#chan"): its
  // lookup runs a lodash search with a closure for every line, nearly always to find nothing.
  const grouped = startsWithStatusPrefix(target, network.supports("STATUSMSG")) ? network.extractTargetGroup(target) : null;
  if (grouped) {
    target = grouped.target;
    group = grouped.target_group;
  }
  return {
    kind,
    event: { from_server: false, nick: parsed.nick, ident: parsed.ident, hostname: parsed.hostname, target, group, message: text, tags, time: serverTime(tags), account: tags.account, batch: undefined },
  };
}

/**
 * Emits a PRIVMSG, NOTICE or ACTION line as the client's event (its listeners and the
 * connection's event table get it as from the library); false leaves the line to the library.
 */
export function emitPlainMessage(client: PlainMessageClient, line: string): boolean {
  if (client.raw_middleware.stack.length > 0 || client.parsed_middleware.stack.length > 0) return false;
  if (client.listenerCount("raw") > 0 || client.listenerCount("message") > 0) return false;
  const read = readPlainMessage(line, client.network);
  if (!read) return false;
  client.emit(read.kind, read.event);
  return true;
}
