/**
 * The IRC connections of one network: the bridge bot's, and one puppet per Matrix user,
 * opened on first need. Every connect goes through the network's ConnectScheduler; channel
 * lines from all of them go through the ChannelBroker, which lets one copy through.
 * Limits: `maxClients` (least recently active user evicted first), `idleTimeoutMs`, and at
 * start-up only users active within `reconnectActiveWithinMs` come back.
 */
import { EventEmitter } from "node:events";
import type { NetworkConfig } from "../config/schema.js";
import { isChannelName } from "../format/ircText.js";
import { sanitiseNick } from "../format/nick.js";
import { fillTemplate } from "../format/template.js";
import { getLogger } from "../logging.js";
import { metrics, poolStatsSources, type PoolStats } from "../metrics/metrics.js";
import type { DataStore, PuppetRecord } from "../store/DataStore.js";
import { ChannelBroker } from "./ChannelBroker.js";
import { ChannelRoster, type MembershipChange } from "./ChannelRoster.js";
import { ConnectScheduler } from "./ConnectScheduler.js";
import { IrcConnection, type IrcConnectionOptions, type IrcMessage } from "./IrcConnection.js";
import { allocateIpv6 } from "./ipv6.js";
import { Outbox, type OutgoingMessage } from "./Outbox.js";

const log = getLogger("irc/pool");
const ACTIVITY_WRITE_EVERY_MS = 60_000;

/** What the pool asks of the rest of the bridge. */
export interface PoolHooks {
  /** A Matrix user's display name, asked only when the nick template uses $DISPLAY. */
  displayNameOf(userId: string): Promise<string | null>;
  /** A stored password in clear, or null when it cannot be opened (no key, another key). */
  openPassword(sealed: string): string | null;
}

const NO_HOOKS: PoolHooks = { displayNameOf: async () => null, openPassword: () => null };

/** A stable ident (≤ 10 chars) for a Matrix user: letters and digits of the localpart. */
export function usernameFor(userId: string): string {
  const localpart = userId.slice(1).split(":")[0];
  return (localpart.toLowerCase().replace(/[^a-z0-9]/g, "") || "matrix").slice(0, 10);
}

/** `base` made unique among `taken` by a numeric suffix, within 10 characters. */
export function uniqueUsername(base: string, taken: Set<string>): string {
  if (!taken.has(base)) return base;
  for (let n = 2; ; n++) {
    const suffix = String(n);
    const candidate = `${base.slice(0, 10 - suffix.length)}${suffix}`;
    if (!taken.has(candidate)) return candidate;
  }
}

interface Puppet {
  userId: string;
  connection: IrcConnection;
  outbox: Outbox;
  record: PuppetRecord;
  lastWrittenAt: number;
}

export interface PoolEvents {
  /** A channel line, once, whichever connection saw it first. */
  channelLine: [IrcMessage];
  /** Something a Matrix user should be told about their connection. */
  userNotice: [string, string];
  /** An IRC user joined, left or changed nick in a channel (seen by the bot). */
  membership: [MembershipChange];
  /** The full member list of a channel, when the bot joins it. */
  names: [string, string[]];
  /** A channel's topic changed on IRC (seen by the bot). */
  topic: [{ channel: string; topic: string; nick: string }];
  /** A private message to a Matrix user's puppet (user ID, message). */
  privateLine: [string, IrcMessage];
  /** A Matrix user's puppet was kicked from a channel on IRC. */
  puppetKicked: [string, { channel: string; by: string; reason: string }];
  /** Someone on IRC invited a Matrix user's puppet to a channel. */
  puppetInvited: [string, { channel: string; by: string }];
}

export class NetworkPool extends EventEmitter<PoolEvents> {
  readonly bot: IrcConnection;
  readonly scheduler: ConnectScheduler;
  readonly roster: ChannelRoster;
  private readonly broker: ChannelBroker;
  private readonly puppets = new Map<string, Puppet>();
  private readonly creating = new Map<string, Promise<Puppet>>();
  private records = new Map<string, PuppetRecord>();
  private readonly takenUsernames = new Set<string>();
  private readonly takenAddresses = new Set<string>();
  /** Casefolded nicks of our connections → the Matrix user (null: the bot), checked per line in O(1). */
  private readonly ownNicks = new Map<string, string | null>();
  private idleTimer: NodeJS.Timeout | null = null;
  private readonly stats = () => this.collectStats();

  constructor(
    readonly networkId: string,
    readonly config: NetworkConfig,
    private readonly store: DataStore,
    private readonly hooks: PoolHooks = NO_HOOKS,
  ) {
    super();
    const { pool } = config;
    this.scheduler = new ConnectScheduler(networkId, pool.connectsPerSecond, pool.maxConnectsInFlight, pool.throttlePauseMs);
    this.broker = new ChannelBroker(networkId, (channel) => this.connectionsIn(channel));
    this.broker.on("line", (msg) => this.emit("channelLine", msg));
    poolStatsSources.add(this.stats);
    this.bot = this.createConnection(null, config.botNick, config.botUsername, `Matrix bridge bot for ${config.name}`, null, false);
    this.roster = new ChannelRoster(this.bot);
    this.roster.on("change", (change) => this.emit("membership", change));
    this.roster.on("names", (channel, nicks) => this.emit("names", channel, nicks));
    this.bot.on("topic", ({ channel, topic, nick }) => {
      if (nick) this.emit("topic", { channel, topic, nick });
    });
  }

  private createConnection(
    userId: string | null,
    nick: string,
    username: string,
    realname: string,
    localAddress: string | null,
    quiet = true,
    credentials?: IrcConnectionOptions["credentials"],
  ): IrcConnection {
    const c = this.config;
    const connection = new IrcConnection({
      networkId: this.networkId,
      networkName: c.name,
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
      scheduler: this.scheduler,
      localAddress,
      quiet,
      credentials,
    });
    let ownNick: string | null = null;
    const forgetNick = () => {
      if (ownNick) this.ownNicks.delete(ownNick);
      ownNick = null;
    };
    const rememberNick = (nick: string) => {
      forgetNick();
      ownNick = connection.casefold(nick);
      this.ownNicks.set(ownNick, userId);
    };
    connection.on("registered", rememberNick);
    connection.on("nickChanged", rememberNick);
    connection.on("disconnected", () => {
      forgetNick();
      this.broker.onConnectionLost(connection);
    });
    connection.on("fatal", forgetNick);
    connection.on("message", (msg) => {
      if (isChannelName(msg.target, connection.chanTypes)) this.broker.onLine(connection, connection.casefold(msg.target), msg);
    });
    return connection;
  }

  private connectionsIn(channel: string): IrcConnection[] {
    return this.allConnections().filter((c) => c.state === "connected" && c.isJoined(channel));
  }

  private collectStats(): PoolStats {
    const states: Record<string, number> = { connecting: 0, connected: 0, disconnected: 0 };
    let channelMemberships = 0;
    for (const c of this.allConnections()) {
      if (c.state in states) states[c.state] += 1;
      channelMemberships += c.joinedChannels.length;
    }
    return { network: this.networkId, states, channelMemberships };
  }

  private allConnections(): IrcConnection[] {
    return [this.bot, ...[...this.puppets.values()].map((p) => p.connection)];
  }

  /** Loads stored puppets, connects the bot and joins the given channels. */
  async startBot(channels: { name: string; key: string | null }[]): Promise<void> {
    this.records = new Map((await this.store.getPuppets(this.networkId)).map((r) => [r.userId, r]));
    for (const r of this.records.values()) {
      this.takenUsernames.add(r.username);
      if (r.ipv6) this.takenAddresses.add(r.ipv6);
    }
    if (this.config.pool.idleTimeoutMs > 0) {
      const every = Math.max(1_000, Math.min(this.config.pool.idleTimeoutMs / 4, 60_000));
      this.idleTimer = setInterval(() => this.disconnectIdle(), every);
      this.idleTimer.unref();
    }
    await this.bot.connect();
    await Promise.all(
      channels.map(({ name, key }) =>
        this.bot.join(name, key).catch((err: Error) => log.error("Bot could not join", { network: this.networkId, channel: name, error: err.message })),
      ),
    );
  }

  /**
   * Reconnects the users active within the configured window and rejoins their channels that
   * `stillBridged` accepts; the scheduler paces them. Returns how many were started.
   */
  reconnectActiveUsers(stillBridged: (channelName: string) => string | null | false): number {
    const since = Date.now() - this.config.pool.reconnectActiveWithinMs;
    const recent = [...this.records.values()].filter((r) => r.lastActiveAt >= since && r.channels.length > 0);
    for (const record of recent) {
      const channels = record.channels.flatMap((name) => {
        const key = stillBridged(name);
        return key === false ? [] : [{ name, key }];
      });
      if (channels.length === 0) continue;
      void this.puppetFor(record.userId, false)
        .then(async (puppet) => {
          await puppet.connection.connect();
          await Promise.all(channels.map(({ name, key }) => puppet.connection.join(name, key)));
        })
        .catch((err: Error) => log.warn("Could not bring a puppet back", { network: this.networkId, userId: record.userId, error: err.message }));
    }
    log.info("Reconnecting recently active users", { network: this.networkId, users: recent.length, perSecond: this.config.pool.connectsPerSecond });
    return recent.length;
  }

  /** True when `nick` is one of the bridge's own connections (so its lines are not relayed back). */
  isOwnNick(nick: string): boolean {
    return this.ownNicks.has(this.bot.casefold(nick));
  }

  /** The Matrix user whose puppet has `nick` now, if any. */
  userIdOfNick(nick: string): string | null {
    return this.ownNicks.get(this.bot.casefold(nick)) ?? null;
  }

  /**
   * Queues a user's message on their connection (opened, or waited for, as needed). Resolves
   * once it is queued, so the caller can keep messages in order; `delivered` settles when it
   * is on IRC or cannot be.
   */
  async enqueue(userId: string, message: OutgoingMessage): Promise<{ delivered: Promise<(string | null)[]> }> {
    const puppet = await this.puppetFor(userId, true);
    const delivered = puppet.outbox.send(message).then((msgids) => {
      if (isChannelName(message.target, puppet.connection.chanTypes)) this.rememberChannel(puppet, message.target);
      return msgids;
    });
    return { delivered };
  }

  /** Connects the user (if needed) and joins a channel; rejects with the server's reason. */
  async join(userId: string, channelName: string, key: string | null): Promise<IrcConnection> {
    const puppet = await this.puppetFor(userId, true);
    await puppet.connection.connect();
    await puppet.connection.join(channelName, key);
    this.rememberChannel(puppet, channelName);
    return puppet.connection;
  }

  /** Sets a channel's topic as the user; rejects with the server's reason (e.g. not a channel operator). */
  async setTopic(userId: string, channelName: string, key: string | null, topic: string): Promise<void> {
    await (await this.join(userId, channelName, key)).setTopic(channelName, topic);
  }

  /** Kicks `nick` from a channel as the user; rejects with the server's reason. */
  async kick(userId: string, channelName: string, key: string | null, nick: string, reason: string): Promise<void> {
    await (await this.join(userId, channelName, key)).kick(channelName, nick, reason);
  }

  /** The IRC nick a Matrix user's puppet has now, if connected. */
  nickOf(userId: string): string | null {
    const puppet = this.puppets.get(userId);
    return puppet && puppet.connection.state === "connected" ? puppet.connection.nick : null;
  }

  /** The user's stored IRC identity on this network (nick, account, channels), if any. */
  recordOf(userId: string): PuppetRecord | null {
    return this.records.get(userId) ?? null;
  }

  /** The user's connection, opened and registered if need be. */
  async connectionFor(userId: string): Promise<IrcConnection> {
    const puppet = await this.puppetFor(userId, true);
    await puppet.connection.connect();
    return puppet.connection;
  }

  /** Changes and stores the user's settings (nick, account, password), used from the next connect. */
  async updateRecord(userId: string, changes: Partial<Pick<PuppetRecord, "nick" | "account" | "password">>): Promise<PuppetRecord> {
    const puppet = await this.puppetFor(userId, false);
    Object.assign(puppet.record, changes);
    if (changes.nick) puppet.connection.options.nick = changes.nick;
    await this.store.upsertPuppet(puppet.record);
    return puppet.record;
  }

  /** Drops the user's connection and opens a new one, rejoining their channels. */
  async reconnectUser(userId: string, channels: { name: string; key: string | null }[]): Promise<IrcConnection> {
    const old = this.puppets.get(userId);
    if (old) await this.disconnect(old, "Reconnecting");
    const connection = await this.connectionFor(userId);
    await Promise.all(channels.map(({ name, key }) => connection.join(name, key).catch((err: Error) => this.emit("userNotice", userId, `Could not rejoin ${name}: ${err.message}`))));
    return connection;
  }

  /** Disconnects the user and forgets their channels; returns the channels they were in. */
  async quitUser(userId: string, message: string): Promise<string[]> {
    const puppet = this.puppets.get(userId);
    const record = this.records.get(userId);
    const channels = record?.channels ?? [];
    if (record) {
      record.channels = [];
      await this.store.upsertPuppet(record);
    }
    if (puppet) await this.disconnect(puppet, message);
    return channels;
  }

  /** The user's puppet leaves a channel (they left or were removed from its room). */
  part(userId: string, channelName: string, message: string): void {
    this.forgetChannel(userId, channelName);
    this.puppets.get(userId)?.connection.part(channelName, message);
  }

  /** The user's puppet is no longer to be in a channel (it left, or was kicked). */
  private forgetChannel(userId: string, channelName: string): void {
    const record = this.records.get(userId);
    if (record) {
      const folded = this.bot.casefold(channelName);
      const kept = record.channels.filter((c) => this.bot.casefold(c) !== folded);
      if (kept.length !== record.channels.length) {
        record.channels = kept;
        this.persist(record);
      }
    }
  }

  /** The ident (RFC 1413) answer for a connection of ours, by its ports. */
  identFor(localPort: number, remotePort: number): string | null {
    for (const connection of this.allConnections()) {
      const ports = connection.ports;
      if (ports && ports.local === localPort && ports.remote === remotePort) return connection.options.username;
    }
    return null;
  }

  private async puppetFor(userId: string, active: boolean): Promise<Puppet> {
    let puppet = this.puppets.get(userId);
    if (!puppet) {
      let creating = this.creating.get(userId);
      if (!creating) {
        creating = this.createPuppet(userId).finally(() => this.creating.delete(userId));
        this.creating.set(userId, creating);
      }
      puppet = await creating;
    }
    if (active) this.touch(puppet);
    return puppet;
  }

  private async createPuppet(userId: string): Promise<Puppet> {
    await this.makeRoom();
    const stored = this.records.get(userId);
    const localpart = userId.slice(1).split(":")[0];
    const displayName = !stored && this.config.puppetNickTemplate.includes("$DISPLAY") ? await this.hooks.displayNameOf(userId) : null;
    const wantedNick = stored?.nick ?? sanitiseNick(fillTemplate(this.config.puppetNickTemplate, { LOCALPART: localpart, DISPLAY: displayName ?? localpart }));
    const username = stored?.username ?? uniqueUsername(usernameFor(userId), this.takenUsernames);
    const ipv6 = this.config.ipv6Prefix ? (stored?.ipv6 ?? allocateIpv6(this.config.ipv6Prefix, userId, this.takenAddresses)) : null;
    this.takenUsernames.add(username);
    if (ipv6) this.takenAddresses.add(ipv6);
    const record: PuppetRecord = {
      userId,
      networkId: this.networkId,
      nick: wantedNick,
      username,
      ipv6,
      channels: stored?.channels ?? [],
      lastActiveAt: stored?.lastActiveAt ?? 0,
      password: stored?.password ?? null,
      account: stored?.account ?? null,
    };
    this.records.set(userId, record);
    await this.store.upsertPuppet(record);

    const credentials = () => {
      const password = record.password ? this.hooks.openPassword(record.password) : null;
      return password ? { account: record.account ?? record.nick, password } : null;
    };
    const connection = this.createConnection(userId, wantedNick, username, userId, ipv6, true, credentials);
    const { maxMessages, ttlMs } = this.config.pool.offlineQueue;
    const outbox = new Outbox(connection, maxMessages, ttlMs, (delta) => metrics.offlineQueued.inc({ network: this.networkId }, delta));
    const puppet: Puppet = { userId, connection, outbox, record, lastWrittenAt: 0 };
    connection.on("registered", (nick) => {
      if (nick !== record.nick) {
        this.emit("userNotice", userId, `Your nick on ${this.config.name} is ${nick}, because ${record.nick} is already in use.`);
      }
    });
    connection.on("fatal", (reason) => {
      this.emit("userNotice", userId, `${this.config.name} refused your connection and the bridge will not retry: ${reason}`);
      this.remove(puppet);
    });
    connection.on("message", (msg) => {
      if (!isChannelName(msg.target, connection.chanTypes) && !connection.isSelf(msg.nick)) this.emit("privateLine", userId, msg);
    });
    this.noticeConnectionChanges(userId, connection, record);
    connection.on("kicked", (kick) => {
      this.forgetChannel(userId, kick.channel);
      this.emit("puppetKicked", userId, kick);
    });
    connection.on("invited", (invite) => this.emit("puppetInvited", userId, invite));
    this.puppets.set(userId, puppet);
    return puppet;
  }

  /**
   * Tells the user about their connection: a drop that lasts `dropNoticeAfterMs` (short blips
   * say nothing, and a network-wide outage does not become one notice per user at once), the
   * reconnection after such a drop, a nick the server changed, and the server's notices.
   */
  private noticeConnectionChanges(userId: string, connection: IrcConnection, record: PuppetRecord): void {
    const name = this.config.name;
    const tell = (text: string) => this.emit("userNotice", userId, text);
    let dropTimer: NodeJS.Timeout | null = null;
    let told = false;
    let lastReason = "";
    connection.on("disconnected", (reason) => {
      lastReason = reason;
      if (dropTimer || told) return;
      dropTimer = setTimeout(() => {
        dropTimer = null;
        if (connection.state === "connected" || connection.state === "stopped") return;
        told = true;
        tell(`Your connection to ${name} was lost (${lastReason}); the bridge is reconnecting. Messages you send meanwhile wait and go out once it is back.`);
      }, this.config.pool.dropNoticeAfterMs);
      dropTimer.unref();
    });
    connection.on("registered", (nick) => {
      if (dropTimer) clearTimeout(dropTimer);
      dropTimer = null;
      if (told) tell(`Reconnected to ${name} as ${nick}.`);
      told = false;
    });
    connection.on("nickChanged", (nick) => {
      if (connection.casefold(nick) !== connection.casefold(record.nick)) tell(`${name} changed your nick to ${nick}.`);
    });
    connection.on("serverNotice", (text) => tell(`${name}: ${text}`));
  }

  /** Under `maxClients`, evicts the least recently active user to make room for one more. */
  private async makeRoom(): Promise<void> {
    const max = this.config.pool.maxClients;
    while (max > 0 && this.puppets.size >= max) {
      const lru = [...this.puppets.values()].reduce((a, b) => (b.record.lastActiveAt < a.record.lastActiveAt ? b : a));
      log.info("Connection limit reached; disconnecting the least recently active user", { network: this.networkId, userId: lru.userId });
      this.emit(
        "userNotice",
        lru.userId,
        `You were disconnected from ${this.config.name} because the bridge reached its limit of ${max} connections; you will reconnect when you next send a message.`,
      );
      await this.disconnect(lru, "Connection limit reached");
    }
  }

  private disconnectIdle(): void {
    const cutoff = Date.now() - this.config.pool.idleTimeoutMs;
    for (const puppet of [...this.puppets.values()]) {
      if (puppet.record.lastActiveAt < cutoff && puppet.outbox.depth === 0) {
        log.info("Disconnecting an idle user", { network: this.networkId, userId: puppet.userId });
        void this.disconnect(puppet, "Idle");
      }
    }
  }

  private async disconnect(puppet: Puppet, reason: string): Promise<void> {
    this.remove(puppet);
    await puppet.connection.quit(reason);
    this.broker.onConnectionLost(puppet.connection);
  }

  private remove(puppet: Puppet): void {
    if (this.puppets.get(puppet.userId) === puppet) this.puppets.delete(puppet.userId);
    this.ownNicks.delete(puppet.connection.casefold(puppet.connection.nick));
  }

  private touch(puppet: Puppet): void {
    const now = Date.now();
    puppet.record.lastActiveAt = now;
    if (now - puppet.lastWrittenAt > ACTIVITY_WRITE_EVERY_MS) {
      puppet.lastWrittenAt = now;
      this.persist(puppet.record);
    }
  }

  private rememberChannel(puppet: Puppet, channelName: string): void {
    const folded = puppet.connection.casefold(channelName);
    if (puppet.record.channels.some((c) => puppet.connection.casefold(c) === folded)) return;
    puppet.record.channels.push(channelName);
    this.persist(puppet.record);
  }

  private persist(record: PuppetRecord): void {
    this.store.upsertPuppet(record).catch((err: Error) => log.error("Could not store a puppet", { userId: record.userId, error: err.message }));
  }

  async stop(): Promise<void> {
    if (this.idleTimer) clearInterval(this.idleTimer);
    this.scheduler.stop();
    const all = this.allConnections();
    await Promise.all([...this.puppets.values()].map((p) => this.store.upsertPuppet(p.record).catch(() => undefined)));
    await Promise.all(all.map((c) => c.quit(this.config.quitMessage)));
    poolStatsSources.delete(this.stats);
  }
}
