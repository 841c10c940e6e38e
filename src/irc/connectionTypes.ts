/**
 * What an IRC connection is given (its options) and what it reports (its events and
 * messages): the vocabulary the pool and the bridge use, apart from how a connection works.
 */
import type { ConnectScheduler } from "./ConnectScheduler.js";
import type { IrcConnection } from "./IrcConnection.js";
import type { LinkWatch } from "./LinkWatch.js";

export type ConnectionState = "idle" | "connecting" | "connected" | "disconnected" | "stopped";
export type IrcMessageKind = "privmsg" | "notice" | "action";

export interface IrcMessage {
  kind: IrcMessageKind;
  nick: string;
  ident: string;
  hostname: string;
  target: string;
  text: string;
  tags: Record<string, string>;
  receivedAt: number;
  /** When the server says the line was said (IRCv3 server-time, ms since the epoch), if it says. */
  time?: number;
  /** A line of a channel's replayed history (see HistoryRecovery), not said just now. */
  recovered?: boolean;
}

export interface IrcConnectionOptions {
  networkId: string;
  /** The network's display name, for messages to users. */
  networkName: string;
  host: string;
  port: number;
  tls: boolean;
  rejectUnauthorized: boolean;
  nick: string;
  username: string;
  realname: string;
  connectTimeoutMs: number;
  sendRate: { burst: number; linesPerSecond: number };
  /** Reconnect after an unexpected drop (with backoff) and rejoin channels. */
  reconnect: boolean;
  /** The network's connection-rate limiter; every attempt goes through it. */
  scheduler: ConnectScheduler;
  /** Source address to connect from (per-user IPv6), or null for the system's choice. */
  localAddress: string | null;
  /**
   * Drop other users' membership traffic and channel listings before irc-framework handles
   * them. Puppets need none of it (the bot's connection follows membership), and in a channel
   * with N puppets every JOIN arrives N times: this keeps that cost flat.
   */
  quiet: boolean;
  /** Lines that are not valid UTF-8 are decoded with this (e.g. latin1), each line on its own; null: UTF-8 anyway. */
  encodingFallback?: string | null;
  /** The account and password to log in with, read at each connect (SASL PLAIN, else PASS and NickServ). */
  credentials?: (connection: IrcConnection) => { account: string; password: string } | null;
  /** Watches the link for silence (tests pass their own); the process's shared one by default. */
  linkWatch?: LinkWatch;
  /** The Matrix user this connection is the puppet of; null for the bridge bot. */
  owner: string | null;
  /**
   * The network's nicks of our connections, casefolded → the Matrix user (null: the bot or the
   * canary), shared by all of them (NetworkPool's): a channel line said by another puppet is
   * skipped before it is parsed (see IrcTransport).
   */
  puppetNicks?: ReadonlyMap<string, string | null>;
  /**
   * Whether a channel line with this msgid went through already (channel casefolded): counted
   * as a deduplicated copy, and skipped before it is parsed (see IrcTransport). NetworkPool's broker.
   */
  channelLineSeen?(channel: string, msgid: string): boolean;
}

/** A TAGMSG (client tags only: reactions, typing) from another user, in a channel or to us. */
export interface IrcTagMessage {
  nick: string;
  target: string;
  tags: Record<string, string>;
}

/** A REDACT (IRCv3 draft/message-redaction): `nick` took back the line `msgid` sent to `target`. */
export interface IrcRedaction {
  nick: string;
  target: string;
  msgid: string;
  reason: string;
}

/** Other users' membership, as irc-framework reports it (quiet connections never see these). */
export type RawMembership =
  | { type: "names"; channel: string; nicks: string[]; /** Each nick's prefix modes (e.g. "ov"), in the same order. */ modes: string[] }
  | { type: "join"; nick: string; channel: string }
  | { type: "part" | "kick"; nick: string; channel: string; reason: string }
  | { type: "quit"; nick: string; reason: string }
  | { type: "nick"; nick: string; newNick: string };

/** One change of a MODE line on a channel, e.g. { mode: "+o", param: "alice" }. */
export interface ModeChange {
  mode: string;
  param: string | null;
}

export interface IrcConnectionEvents {
  membership: [RawMembership];
  /** A MODE line on a channel (bot only): who set it and the changes, checked to be well formed. */
  channelMode: [{ channel: string; nick: string; changes: ModeChange[] }];
  /** A channel's full modes, as RPL_CHANNELMODEIS (324) says (bot only), e.g. "+ntk". */
  channelModeIs: [{ channel: string; modes: string }];
  message: [IrcMessage];
  /** A TAGMSG from someone else (bot only). */
  tagmsg: [IrcTagMessage];
  /** A REDACT from someone else (bot only). */
  redact: [IrcRedaction];
  /** A channel's recent history, replayed by the server as we joined (a `chathistory` batch), in order. */
  history: [{ channel: string; lines: IrcMessage[] }];
  /** A channel's topic was changed (`nick` set) or reported (`nick` null). */
  topic: [{ channel: string; topic: string; nick: string | null }];
  /** Someone invited this connection's user to a channel. */
  invited: [{ channel: string; by: string }];
  /** This connection's user was kicked from a channel (`key`: the key it had joined with). */
  kicked: [{ channel: string; by: string; reason: string; key: string | null }];
  registered: [string];
  disconnected: [string];
  /** The server refused us for good (ban, bad password): no more reconnects. */
  fatal: [string];
  /** A reconnect is scheduled after a drop or a failed attempt. */
  reconnecting: [{ attempt: number; delayMs: number }];
  /** Our own nick changed (by !nick, or the server). */
  nickChanged: [string];
  /** A NOTICE from the server itself addressed to us, after registration. */
  serverNotice: [string];
}
