/**
 * The one way the bridge writes to IRC. Every line (messages, JOIN and keys, PART, KICK,
 * TOPIC, MODE, WHOIS, NICK, QUIT, NickServ, `!cmd`, TAGMSG, REDACT) is built here from parameters, so no
 * caller can put CR, LF or NUL on the wire, whatever it was handed:
 *
 * - the command is letters or a three-digit numeric;
 * - "words" (channels, nicks, keys, modes: every parameter but the last free text) may not be
 *   empty, hold whitespace, CR, LF or NUL, or start with ':' — such a line is refused;
 * - the free "text" (a message, a reason, a topic) is always the trailing parameter: CR, LF
 *   and NUL in it become spaces, and it is cut (at a character boundary) to the server's
 *   KICKLEN / TOPICLEN / AWAYLEN and to the 512 bytes of an IRC line.
 *
 * Every line then goes through the connection's flood control (SendPacer), one token per line
 * actually written: a long message is split here, not by the IRC library.
 */
import type { Client } from "irc-framework";
import { splitIrcText } from "../format/split.js";
import { IrcFailure } from "./errors.js";
import type { SendPacer } from "./SendPacer.js";

/** 512 bytes per line, CR LF included. */
const MAX_LINE_BYTES = 510;
/** What the server puts before a relayed message (`:nick!user@host `) when the host is unknown. */
const ASSUMED_HOST_BYTES = 63;
/** `@`, the tags and the space after them, as a client may send them (IRCv3 message-tags). */
const MAX_TAG_BYTES = 4094;
const ASSUMED_USER_BYTES = 10;
/** The ISUPPORT limit that applies to each command's text, where servers announce one. */
const TEXT_LIMITS: Record<string, string> = { KICK: "KICKLEN", TOPIC: "TOPICLEN", AWAY: "AWAYLEN" };

const COMMAND = /^(?:[A-Za-z]+|\d{3})$/;
const WORD = /^[^\s:\0\r\n][^\s\0\r\n]*$/;
const LINE_BREAKS = /[\r\n\0]+/g;

export type IrcTags = Record<string, string>;

/** A line the writer refuses to build (an unsafe word or command): never retried as is. */
export class UnsafeLineError extends IrcFailure {
  constructor(message: string) {
    super("unsafe_line", message, true);
    this.name = "UnsafeLineError";
  }
}

/** Whether `value` may be a word parameter (a nick, channel, key, mode) of an IRC line. */
export function isSafeWord(value: string): boolean {
  return WORD.test(value);
}

/** Free text on one line: CR, LF and NUL become single spaces. */
export function oneLine(text: string): string {
  return text.replace(LINE_BREAKS, " ");
}

/** The longest prefix of `text` whose UTF-8 encoding fits in `maxBytes`, never cutting a character. */
export function cutToBytes(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let bytes = 0;
  let end = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char);
    if (bytes + size > maxBytes) break;
    bytes += size;
    end += char.length;
  }
  return text.slice(0, end);
}

const CTCP = /\x01/g;

function escapeTagValue(value: string): string {
  return value.replace(/[\\; \r\n\0]/g, (c) => ({ "\\": "\\\\", ";": "\\:", " ": "\\s", "\r": "\\r", "\n": "\\n", "\0": "" })[c]!);
}

function tagPrefix(tags: IrcTags | undefined): string {
  if (!tags || Object.keys(tags).length === 0) return "";
  const parts = Object.entries(tags).map(([key, value]) => {
    if (!/^\+?[A-Za-z0-9./-]+$/.test(key)) throw new UnsafeLineError(`${JSON.stringify(key)} is not a valid message tag name`);
    return value === "" ? key : `${key}=${escapeTagValue(value)}`;
  });
  const prefix = `@${parts.join(";")} `;
  // Servers take at most 4094 bytes of client tags (IRCv3 message-tags): longer is refused whole.
  if (Buffer.byteLength(prefix) > MAX_TAG_BYTES) throw new UnsafeLineError("the message tags would be longer than IRC allows");
  return prefix;
}

/**
 * Builds one raw line. `text`, when given, is the trailing parameter (flattened and cut to
 * `maxTextBytes` and to the line's room). Throws UnsafeLineError for anything else unsafe.
 */
export function buildLine(command: string, words: readonly string[], text?: string, options: { tags?: IrcTags; maxTextBytes?: number } = {}): string {
  if (!COMMAND.test(command)) throw new UnsafeLineError(`${JSON.stringify(command)} is not an IRC command`);
  for (const word of words) {
    if (!isSafeWord(word)) throw new UnsafeLineError(`${JSON.stringify(word)} cannot be sent as one IRC parameter (it is empty, holds a space or line break, or starts with ':')`);
  }
  const head = [command.toUpperCase(), ...words].join(" ");
  if (text === undefined) {
    if (Buffer.byteLength(head) > MAX_LINE_BYTES) throw new UnsafeLineError(`the ${command} line would be longer than IRC allows`);
    return tagPrefix(options.tags) + head;
  }
  const room = MAX_LINE_BYTES - Buffer.byteLength(head) - 2;
  if (room < 0) throw new UnsafeLineError(`the ${command} line would be longer than IRC allows`);
  const trailing = cutToBytes(oneLine(text), Math.min(room, options.maxTextBytes ?? Infinity));
  return `${tagPrefix(options.tags)}${head} :${trailing}`;
}

/**
 * Splits a message's text into pieces that each fit one line as the server will relay it
 * (`:nick!user@host PRIVMSG target :text`): at spaces where possible, never inside a
 * character or a formatting code, the formatting in force reopened on the next piece.
 */
export function splitMessage(text: string, maxBytes: number): string[] {
  return splitIrcText(oneLine(text), maxBytes);
}

/** The bytes of the text of a message, once the server has put `:nick!user@host COMMAND target :` before it. */
export function messageBudget(nick: string, user: string | null, host: string | null, command: string, target: string): number {
  const prefix = 1 + Buffer.byteLength(nick) + 1 + (user ? Buffer.byteLength(user) : ASSUMED_USER_BYTES) + 1 + (host ? Buffer.byteLength(host) : ASSUMED_HOST_BYTES) + 1;
  return MAX_LINE_BYTES - prefix - Buffer.byteLength(`${command} ${target} :`);
}

/**
 * Reads a command line as a user typed it (`MODE #chan +o nick`, `AWAY :gone home`) into the
 * parameters the writer takes: the command, its words, and the text after " :" if any.
 * Line breaks are refused here, so a typed line is never more than one line.
 */
export function parseCommandLine(line: string): { command: string; words: string[]; text?: string } {
  if (/[\r\n\0]/.test(line)) throw new UnsafeLineError("a command must be one line, without line breaks or NUL characters");
  const trimmed = line.trim();
  const colon = trimmed.startsWith(":") ? 0 : trimmed.indexOf(" :");
  const head = colon >= 0 ? trimmed.slice(0, colon) : trimmed;
  const text = colon >= 0 ? trimmed.slice(colon + (colon === 0 ? 1 : 2)) : undefined;
  const [command = "", ...words] = head.split(/[ \t]+/).filter(Boolean);
  return { command, words, ...(text !== undefined ? { text } : {}) };
}

/** irc-framework's connection, as far as the writer uses it. */
interface LibraryConnection {
  connected?: boolean;
  requested_disconnect?: boolean;
  transport: { writeLine(line: string): void };
}

/** One connection's writer: lines built safely, then paced. */
export class IrcWriter {
  /** Our user@host as the server shows it to others, once it told us (our JOIN's echo, 396). */
  private self: { user: string | null; host: string } | null = null;

  constructor(
    private readonly client: Client,
    private readonly pacer: SendPacer,
  ) {}

  /** Builds a line (throws UnsafeLineError at once) and queues it; resolves once it is on the socket. */
  send(command: string, words: readonly string[], text?: string, tags?: IrcTags): Promise<void> {
    let line: string;
    try {
      line = buildLine(command, words, text, { tags, maxTextBytes: this.limitFor(command) });
    } catch (err) {
      return Promise.reject(err);
    }
    return this.write(line);
  }

  /** Queues a built line for flood control; resolves once it is on the socket. */
  private write(line: string): Promise<void> {
    return this.pacer.send(() => {
      // The library drops a line silently on a closed or closing socket: that is not "written".
      const connection = (this.client as unknown as { connection?: LibraryConnection }).connection;
      if (!connection?.connected || connection.requested_disconnect) throw new IrcFailure("disconnected", "the IRC connection is not open");
      // Straight to the transport: the library's raw() would copy its arguments and emit the
      // outgoing line as a "raw" event twice over (connection, then client), which no listener
      // of ours reads (they read the server's lines only).
      connection.transport.writeLine(line);
    });
  }

  /** Writes the pieces of one message (see `pieces`), each a paced line; resolves once all are on the socket. */
  async message(kind: "privmsg" | "notice" | "action", target: string, pieces: readonly string[], tags?: IrcTags): Promise<void> {
    const command = kind === "notice" ? "NOTICE" : "PRIVMSG";
    // Tags (a reply's) go with the first line only: the rest continue it. All lines are built
    // before any is queued, so an unsafe one leaves none written (an echo waited for would
    // otherwise be answered by pieces nobody expects).
    // CTCP's \x01 only as the ACTION wrapper added here: in text it would make the bridge send a
    // CTCP (a DCC offer, say) of someone else's choosing.
    const lines = pieces.map((piece, i) => {
      const text = piece.replace(CTCP, "");
      return buildLine(command, [target], kind === "action" ? `\x01ACTION ${text}\x01` : text, { tags: i === 0 ? tags : undefined });
    });
    await Promise.all(lines.map((line) => this.write(line)));
  }

  /**
   * The lines a PRIVMSG, NOTICE or CTCP ACTION will be split into (what `message` then sends,
   * in order), each fitting one line as the server will relay it.
   */
  pieces(kind: "privmsg" | "notice" | "action", target: string, text: string): string[] {
    const command = kind === "notice" ? "NOTICE" : "PRIVMSG";
    const wrapper = kind === "action" ? "\x01ACTION \x01".length : 0;
    const budget = messageBudget(this.client.user.nick, this.self?.user ?? null, this.self?.host ?? null, command, target) - wrapper;
    if (budget < 16) throw new UnsafeLineError(`${JSON.stringify(target)} is too long a target`);
    return splitMessage(text.replace(CTCP, ""), budget);
  }

  /**
   * `TAGMSG target` carrying client tags only (IRCv3 message-tags: reactions, typing). A
   * TAGMSG without tags means nothing, so none is written.
   */
  tagmsg(target: string, tags: IrcTags): Promise<void> {
    if (Object.keys(tags).length === 0) return Promise.reject(new UnsafeLineError("a TAGMSG needs at least one tag"));
    return this.send("TAGMSG", [target], undefined, tags);
  }

  /** `REDACT target msgid [:reason]` (IRCv3 draft/message-redaction): takes back a line by its msgid. */
  redact(target: string, msgid: string, reason?: string): Promise<void> {
    return this.send("REDACT", [target, msgid], reason || undefined);
  }

  /** The server told us our user and host as others see them (null: forget it, e.g. at a reconnect). */
  setSelf(self: { user: string | null; host: string } | null): void {
    this.self = self && self.host ? self : null;
  }

  /** Says QUIT (text cut and flattened like any other) and closes the connection once it is written. */
  quit(text: string): void {
    // Lines still waiting for flood control will not be written: their senders are told, or
    // at shutdown their events stay in the journal (see MatrixToIrc).
    this.pacer.clear(new IrcFailure("stopped", "the IRC connection was closed"));
    this.client.quit(buildLine("QUIT", [], text).slice("QUIT :".length));
  }

  /** Drops the connection at once, writing nothing (a dead link: nothing would get through). */
  abort(): void {
    (this.client as unknown as { connection?: { end(data: null, hadError: boolean): void } }).connection?.end(null, true);
  }

  private limitFor(command: string): number | undefined {
    const key = TEXT_LIMITS[command.toUpperCase()];
    // A valueless ISUPPORT token is stored as `true` by the library: only a number counts.
    const raw: unknown = key ? this.client.network.options[key] : undefined;
    const value = typeof raw === "string" && /^\d+$/.test(raw) ? Number(raw) : NaN;
    return Number.isFinite(value) && value > 0 ? value : undefined;
  }
}
