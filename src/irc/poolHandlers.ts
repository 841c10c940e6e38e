/**
 * What a NetworkPool does with its connections' events: one set of handlers for all of them
 * (the connection is `this` inside each), one listener per event per connection. A closure per
 * connection and event, or two listeners where one does, would cost memory per puppet, and
 * there may be thousands.
 */
import type { NetworkConfig } from "../config/schema.js";
import { isChannelName } from "../format/ircText.js";
import { getLogger } from "../logging.js";
import type { PuppetRecord } from "../store/DataStore.js";
import { ConnectionNotices, type DropState } from "./ConnectionNotices.js";
import type { IrcConnection, IrcMessage } from "./IrcConnection.js";
import type { PoolEvents, PoolHooks } from "./poolEvents.js";

const log = getLogger("irc/pool");

/** A Matrix user's puppet, as the handlers see it. */
export interface PuppetState extends DropState {
  record: PuppetRecord;
}

/** What the handlers need of their pool. */
export interface HandlerPool {
  readonly networkId: string;
  readonly config: NetworkConfig;
  readonly hooks: PoolHooks;
  emit<K extends keyof PoolEvents>(event: K, ...args: PoolEvents[K]): boolean;
  puppetOf(userId: string): PuppetState | undefined;
  recordOf(userId: string): PuppetRecord | null;
  removeChannel(userId: string, channel: string): void;
  /** Forgets the puppet (refused for good): the next message opens a new connection. */
  removePuppet(puppet: PuppetState): void;
  /** The connection's nick is now `nick` (null: it has none any more). */
  setNick(connection: IrcConnection, nick: string | null): void;
  /** A channel line, to the broker. */
  channelLine(connection: IrcConnection, channel: string, msg: IrcMessage): void;
  connectionLost(connection: IrcConnection): void;
  /** A channel's recent history, replayed by the server as the connection joined. */
  historyReplay(connection: IrcConnection, channel: string, lines: IrcMessage[]): void;
}

export type PoolHandlers = ReturnType<typeof poolHandlers>;

export function poolHandlers(pool: HandlerPool) {
  const puppetOf = (c: IrcConnection) => (c.options.owner ? pool.puppetOf(c.options.owner) : undefined);
  const tell = (c: IrcConnection, text: string) => c.options.owner && pool.emit("userNotice", c.options.owner, text);
  const inform = (c: IrcConnection, text: string) => c.options.owner && pool.emit("connectionNotice", c.options.owner, text);
  const notices = new ConnectionNotices(pool.config, inform);
  const name = pool.config.name;
  return {
    registered(this: IrcConnection, nick: string) {
      pool.setNick(this, nick);
      const puppet = puppetOf(this);
      if (!puppet) return;
      notices.restored(puppet, this, nick);
      if (nick !== puppet.record.nick) tell(this, `Your nick on ${name} is ${nick}, because ${puppet.record.nick} is already in use.`);
    },
    nickChanged(this: IrcConnection, nick: string) {
      pool.setNick(this, nick);
      const puppet = puppetOf(this);
      if (puppet && this.casefold(nick) !== this.casefold(puppet.record.nick)) inform(this, `${name} changed your nick to ${nick}.`);
    },
    disconnected(this: IrcConnection, reason: string) {
      pool.setNick(this, null);
      pool.connectionLost(this);
      const puppet = puppetOf(this);
      if (puppet) notices.dropped(puppet, this, reason);
    },
    fatal(this: IrcConnection, reason: string) {
      pool.setNick(this, null);
      if (!this.options.owner) return;
      tell(this, `${name} refused your connection and the bridge will not retry: ${reason}`);
      const puppet = puppetOf(this);
      if (puppet) pool.removePuppet(puppet);
    },
    message(this: IrcConnection, msg: IrcMessage) {
      if (isChannelName(msg.target, this.chanTypes)) pool.channelLine(this, this.casefold(msg.target), msg);
      else if (this.options.owner && !this.isSelf(msg.nick)) pool.emit("privateLine", this.options.owner, msg);
      else if (!this.options.owner && !this.isSelf(msg.nick)) pool.emit("botPrivateLine", msg);
    },
    history(this: IrcConnection, replay: { channel: string; lines: IrcMessage[] }) {
      if (isChannelName(replay.channel, this.chanTypes)) pool.historyReplay(this, this.casefold(replay.channel), replay.lines);
    },
    kicked(this: IrcConnection, kick: { channel: string; by: string; reason: string }) {
      pool.removeChannel(this.options.owner!, kick.channel);
      pool.emit("puppetKicked", this.options.owner!, kick);
    },
    invited(this: IrcConnection, invite: { channel: string; by: string }) {
      pool.emit("puppetInvited", this.options.owner!, invite);
    },
    serverNotice(this: IrcConnection, text: string) {
      inform(this, `${name}: ${text}`);
    },
    credentials(this: void, c: IrcConnection) {
      const record = c.options.owner ? pool.recordOf(c.options.owner) : null;
      const password = record?.password ? pool.hooks.openPassword(record.password) : null;
      if (!record || !password) return null;
      if (!pool.config.tls.enabled) {
        log.warn("Sending a user's password without TLS: anyone on the way to the server can read it (enable tls for this network)", { network: pool.networkId, userId: c.options.owner });
      }
      return { account: record.account ?? record.nick, password };
    },
  };
}

/** Attaches the handlers to a new connection: the canary's lines are not channel traffic; puppets hear about themselves. */
export function wireConnection(connection: IrcConnection, h: PoolHandlers, canary: boolean): void {
  connection.on("registered", h.registered);
  connection.on("nickChanged", h.nickChanged);
  connection.on("disconnected", h.disconnected);
  connection.on("fatal", h.fatal);
  if (!canary) {
    connection.on("message", h.message);
    connection.on("history", h.history);
  }
  if (connection.options.owner) {
    connection.on("kicked", h.kicked);
    connection.on("invited", h.invited);
    connection.on("serverNotice", h.serverNotice);
  }
}
