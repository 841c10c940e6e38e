/**
 * What a connection does with each of irc-framework's events: one table for every connection
 * (BridgeClient calls it with the connection its event belongs to), rather than a closure and
 * a listener per event per connection, which cost kilobytes per puppet.
 *
 * IrcTransport keeps lines irc-framework cannot parse away from it; what it emits is still
 * checked here, so that only non-empty names reach the rest of the bridge.
 */
import type { IrcErrorEvent, JoinEvent, MessageEvent } from "irc-framework";
import { isChannelName } from "../format/ircText.js";
import type { ConnectionState, IrcConnectionEvents, IrcMessage, IrcMessageKind } from "./connectionTypes.js";
import { HISTORY_BATCH, historyEnds, historyLine, historyStarts } from "./ReplayedHistory.js";
import type { IrcWriter } from "./IrcWriter.js";
import { TAG_EVENTS } from "./ircv3Events.js";
import { readNumeric, type NumericReply } from "./numerics.js";

/** What the table needs of its connection (an IrcConnection). */
export interface ClientEventSink {
  readonly state: ConnectionState;
  readonly options: { readonly quiet: boolean };
  readonly chanTypes: string;
  readonly writer: IrcWriter;
  isSelf(nick: string): boolean;
  emit<K extends keyof IrcConnectionEvents>(event: K, ...args: IrcConnectionEvents[K]): boolean;
  /** One of our own lines came back (echo-message). */
  onOwnEcho(target: string, msgid: string | null): void;
  /** The server says we joined (`true`) or left a channel. */
  onOwnMembership(channel: string, inside: boolean): void;
  /** We were kicked: returns the key the channel was joined with. */
  onOwnKick(channel: string): string | null;
  /** Why the socket is closing (the server's ERROR line, a socket error). */
  onCloseReason(reason: string): void;
  onNumeric(reply: NumericReply): void;
  onClosed(): void;
}

// irc-framework's events are untyped: each handler reads and checks the fields it knows.
type Handler = (c: ClientEventSink, e: any) => void;

const named = (...values: unknown[]) => values.every((v) => typeof v === "string" && v.length > 0);

function relay(kind: IrcMessageKind): Handler {
  return (c, e: MessageEvent) => {
    if (!named(e.target) || typeof e.message !== "string") return;
    if (e.from_server && kind === "notice" && c.state === "connected" && !isChannelName(e.target, c.chanTypes)) c.emit("serverNotice", e.message);
    if (e.from_server || !named(e.nick)) return;
    const msg: IrcMessage = { kind, nick: e.nick, ident: e.ident, hostname: e.hostname, target: e.target, text: e.message, tags: e.tags ?? {}, receivedAt: Date.now() };
    if (typeof e.time === "number" && Number.isFinite(e.time)) msg.time = e.time;
    // Replayed history is not news, and our own old lines in it are not echoes of lines in flight.
    if (e.batch?.type === HISTORY_BATCH) return historyLine(c, e.batch.id, { ...msg, recovered: true });
    if (c.isSelf(e.nick)) c.onOwnEcho(e.target, e.tags?.msgid ?? null);
    c.emit("message", msg);
  };
}

/** Every connection's. */
const ALL: Record<string, Handler> = {
  // irc-framework runs a whole batch at once (start, its lines, end) when the batch ends.
  [`batch start ${HISTORY_BATCH}`](c, e: { id: string; params?: string[] }) {
    if (named(e.params?.[0])) historyStarts(c, e.id, e.params![0]);
  },
  [`batch end ${HISTORY_BATCH}`](c, e: { id: string }) {
    const history = historyEnds(c, e.id);
    if (history) c.emit("history", history);
  },
  privmsg: relay("privmsg"),
  notice: relay("notice"),
  action: relay("action"),
  join(c, e: JoinEvent & { ident?: string; hostname?: string }) {
    if (!named(e.nick, e.channel)) return;
    if (c.isSelf(e.nick)) {
      // Our own JOIN shows the prefix the server puts before our lines: the real line budget.
      if (typeof e.hostname === "string" && e.hostname) c.writer.setSelf({ user: e.ident ?? null, host: e.hostname });
      c.onOwnMembership(e.channel, true);
    } else c.emit("membership", { type: "join", nick: e.nick, channel: e.channel });
  },
  "displayed host"(c, e: { nick: string; hostname: string }) {
    if (typeof e.hostname === "string" && e.hostname && !/\s/.test(e.hostname)) c.writer.setSelf({ user: null, host: e.hostname.includes("@") ? e.hostname.split("@").pop()! : e.hostname });
  },
  part(c, e: { nick: string; channel: string; message: string }) {
    if (!named(e.nick, e.channel)) return;
    if (c.isSelf(e.nick)) c.onOwnMembership(e.channel, false);
    else c.emit("membership", { type: "part", nick: e.nick, channel: e.channel, reason: e.message });
  },
  kick(c, e: { kicked: string; nick: string; channel: string; message: string }) {
    if (!named(e.kicked, e.nick, e.channel)) return;
    if (c.isSelf(e.kicked)) c.emit("kicked", { channel: e.channel, by: e.nick, reason: e.message, key: c.onOwnKick(e.channel) });
    else c.emit("membership", { type: "kick", nick: e.kicked, channel: e.channel, reason: `kicked by ${e.nick}: ${e.message}` });
  },
  quit(c, e: { nick: string; message: string }) {
    if (named(e.nick) && !c.isSelf(e.nick)) c.emit("membership", { type: "quit", nick: e.nick, reason: e.message });
  },
  nick(c, e: { nick: string; new_nick: string }) {
    if (!named(e.nick, e.new_nick)) return;
    // irc-framework renames its user only after the listeners have run.
    if (c.isSelf(e.nick) && c.state === "connected") c.emit("nickChanged", e.new_nick);
    else if (!c.isSelf(e.new_nick)) c.emit("membership", { type: "nick", nick: e.nick, newNick: e.new_nick });
  },
  userlist(c, e: { channel: string; users: { nick: string; modes?: unknown }[] }) {
    if (!named(e.channel)) return;
    const users = e.users.filter((u) => named(u.nick));
    const modes = users.map((u) => (Array.isArray(u.modes) ? u.modes.filter((m) => typeof m === "string" && /^[A-Za-z]$/.test(m)).join("") : ""));
    c.emit("membership", { type: "names", channel: e.channel, nicks: users.map((u) => u.nick), modes });
  },
  "irc error"(c, e: IrcErrorEvent) {
    if (e.error === "irc") c.onCloseReason(e.reason ?? "closed by the server");
  },
  "socket error"(c, err: Error) {
    c.onCloseReason(err.message);
  },
  // Numerics are read here once, from the raw line, and handed to whoever waits for one.
  raw(c, e: { line: string; from_server: boolean }) {
    if (!e.from_server) return;
    const reply = readNumeric(e.line);
    if (reply) c.onNumeric(reply);
  },
  close(c) {
    c.onClosed();
  },
};

/** The bot's (and the canary's, not quiet): topics and modes matter to it, it follows channels. */
const BOT: Record<string, Handler> = {
  mode(c, e: { target?: unknown; nick?: unknown; modes?: unknown }) {
    if (!named(e.target) || !isChannelName(e.target as string, c.chanTypes) || !Array.isArray(e.modes)) return;
    // Hostile or odd servers: keep only well-formed single-letter changes with sane params.
    const changes = (e.modes as { mode?: unknown; param?: unknown }[])
      .filter((m) => typeof m?.mode === "string" && /^[+-][A-Za-z]$/.test(m.mode) && (m.param == null || (typeof m.param === "string" && m.param.length > 0 && !/\s/.test(m.param))))
      .map((m) => ({ mode: m.mode as string, param: (m.param as string | null | undefined) ?? null }));
    if (changes.length) c.emit("channelMode", { channel: e.target as string, nick: typeof e.nick === "string" ? e.nick : "", changes });
  },
  "channel info"(c, e: { channel?: unknown; raw_modes?: unknown }) {
    if (named(e.channel) && typeof e.raw_modes === "string") c.emit("channelModeIs", { channel: e.channel as string, modes: e.raw_modes });
  },
  topic(c, e: { channel: string; topic: string; nick?: string }) {
    if (!named(e.channel) || typeof e.topic !== "string") return;
    c.emit("topic", { channel: e.channel, topic: e.topic, nick: e.nick ?? null });
  },
  // Reactions, typing and redactions: the bot hears every channel once (see NetworkPool).
  ...TAG_EVENTS,
};

/** Puppets' (quiet): they are people, so invites matter to them. */
const PUPPET: Record<string, Handler> = {
  invite(c, e: { nick: string; invited: string; channel: string }) {
    if (named(e.nick, e.invited, e.channel) && c.isSelf(e.invited)) c.emit("invited", { channel: e.channel, by: e.nick });
  },
};

/** The handler of an event, if the connection handles it. */
export const CLIENT_EVENTS: Record<string, Handler> = Object.assign(Object.create(null) as Record<string, Handler>, ALL, ...Object.keys({ ...BOT, ...PUPPET }).map((event) => ({
  [event]: (c: ClientEventSink, e: unknown) => (c.options.quiet ? PUPPET : BOT)[event]?.(c, e),
})));
