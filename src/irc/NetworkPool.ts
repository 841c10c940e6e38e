/**
 * The IRC connections of one network: the bridge bot's, and one puppet per Matrix user,
 * opened on first need with the nick the user had before (stored) or one made from the
 * network's template.
 */
import { EventEmitter } from "node:events";
import type { NetworkConfig } from "../config/schema.js";
import { sanitiseNick } from "../format/nick.js";
import { fillTemplate } from "../format/template.js";
import { getLogger } from "../logging.js";
import { metrics } from "../metrics/metrics.js";
import type { DataStore } from "../store/DataStore.js";
import { IrcConnection, type IrcConnectionOptions, type IrcMessage } from "./IrcConnection.js";

const log = getLogger("irc/pool");

/** A stable ident (≤ 10 chars) for a Matrix user: letters and digits of the localpart. */
export function usernameFor(userId: string): string {
  const localpart = userId.slice(1).split(":")[0];
  return (localpart.toLowerCase().replace(/[^a-z0-9]/g, "") || "matrix").slice(0, 10);
}

export interface PoolEvents {
  /** A line seen by the bot's connection (channel traffic and PMs to the bot). */
  botMessage: [IrcMessage];
  /** A line seen by a puppet's connection, with the Matrix user it belongs to. */
  puppetMessage: [string, IrcMessage];
}

export class NetworkPool extends EventEmitter<PoolEvents> {
  readonly bot: IrcConnection;
  private readonly puppets = new Map<string, IrcConnection>();

  constructor(
    readonly networkId: string,
    readonly config: NetworkConfig,
    private readonly store: DataStore,
  ) {
    super();
    this.bot = this.createConnection(config.botNick, config.botUsername, `Matrix bridge bot for ${config.name}`);
    this.bot.on("message", (m) => this.emit("botMessage", m));
  }

  private createConnection(nick: string, username: string, realname: string): IrcConnection {
    const c = this.config;
    const options: IrcConnectionOptions = {
      networkId: this.networkId,
      host: c.address,
      port: c.port,
      tls: c.tls.enabled,
      rejectUnauthorized: c.tls.rejectUnauthorized,
      nick,
      username,
      realname,
      connectTimeoutMs: c.connectTimeoutMs,
      sendRate: c.sendRate,
      reconnect: true,
    };
    const connection = new IrcConnection(options);
    connection.on("registered", () => this.updateGauge());
    connection.on("disconnected", () => this.updateGauge());
    return connection;
  }

  private updateGauge(): void {
    const counts: Record<string, number> = { connecting: 0, connected: 0, disconnected: 0 };
    for (const c of [this.bot, ...this.puppets.values()]) if (c.state in counts) counts[c.state] += 1;
    for (const [state, n] of Object.entries(counts)) metrics.ircConnections.set({ network: this.networkId, state }, n);
  }

  /** Connects the bot and joins the given channels (failures are logged and retried by reconnects). */
  async startBot(channels: { name: string; key: string | null }[]): Promise<void> {
    await this.bot.connect();
    await Promise.all(
      channels.map(({ name, key }) =>
        this.bot.join(name, key).catch((err: Error) => log.error("Bot could not join", { network: this.networkId, channel: name, error: err.message })),
      ),
    );
  }

  /** True when `nick` is one of the bridge's own connections (so its lines are not relayed back). */
  isOwnNick(nick: string): boolean {
    const folded = this.bot.casefold(nick);
    if (this.bot.casefold(this.bot.nick) === folded) return true;
    for (const p of this.puppets.values()) if (p.state === "connected" && p.casefold(p.nick) === folded) return true;
    return false;
  }

  /** The user's connection, connected (opened on first need). */
  async getPuppet(userId: string, displayName: string | null): Promise<IrcConnection> {
    let puppet = this.puppets.get(userId);
    if (!puppet) {
      const stored = await this.store.getPuppet(userId, this.networkId);
      puppet = this.puppets.get(userId); // another call may have created it meanwhile
      if (!puppet) {
        const localpart = userId.slice(1).split(":")[0];
        const nick = stored?.nick ?? sanitiseNick(fillTemplate(this.config.puppetNickTemplate, { LOCALPART: localpart, DISPLAY: displayName ?? localpart }));
        const username = stored?.username ?? usernameFor(userId);
        puppet = this.createConnection(nick, username, userId);
        puppet.on("message", (m) => this.emit("puppetMessage", userId, m));
        puppet.on("registered", (actualNick) => {
          this.store.upsertPuppet({ userId, networkId: this.networkId, nick: stored?.nick ?? nick, username }).catch((err: Error) =>
            log.error("Could not store a puppet", { userId, error: err.message }),
          );
          if (actualNick !== nick) log.info("Puppet got a fallback nick", { userId, wanted: nick, nick: actualNick });
        });
        this.puppets.set(userId, puppet);
      }
    }
    await puppet.connect();
    return puppet;
  }

  async stop(): Promise<void> {
    const all = [this.bot, ...this.puppets.values()];
    await Promise.all(all.map((c) => c.quit(this.config.quitMessage)));
    this.updateGauge();
  }
}
