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
import { getLogger } from "../logging.js";
import { metrics, poolStatsSources, type PoolStats } from "../metrics/metrics.js";
import type { DataStore, PuppetRecord } from "../store/DataStore.js";
import { ChannelBroker } from "./ChannelBroker.js";
import { IrcFailure } from "./errors.js";
import { NO_HOOKS, type PoolEvents, type PoolHooks } from "./poolEvents.js";
import { ChannelRoster } from "./ChannelRoster.js";
import { ConnectScheduler } from "./ConnectScheduler.js";
import { IrcConnection, type IrcMessage } from "./IrcConnection.js";
import { poolHandlers, wireConnection, type HandlerPool, type PoolHandlers } from "./poolHandlers.js";
import { PuppetRecords } from "./PuppetRecords.js";
import { Outbox, type OutgoingMessage } from "./Outbox.js";
import { BotRejoiner } from "./BotRejoiner.js";
import { ChannelPositions, HistoryRecovery } from "./HistoryRecovery.js";

const log = getLogger("irc/pool");
const ACTIVITY_WRITE_EVERY_MS = 60_000;

interface Puppet {
  userId: string;
  connection: IrcConnection;
  /** Made at the user's first message: most puppets only sit in channels. */
  outbox: Outbox | null;
  record: PuppetRecord;
  lastWrittenAt: number;
  /** Drop notices (see ConnectionNotices): the pending one, and whether the user was told. */
  dropTimer: NodeJS.Timeout | null;
  toldDrop: boolean;
}

export class NetworkPool extends EventEmitter<PoolEvents> {
  readonly bot: IrcConnection;
  readonly scheduler: ConnectScheduler;
  readonly roster: ChannelRoster;
  private readonly broker: ChannelBroker;
  private readonly puppets = new Map<string, Puppet>();
  private readonly creating = new Map<string, Promise<Puppet>>();
  private readonly records: PuppetRecords;
  /** Casefolded nicks of our connections → the Matrix user (null: the bot), checked per line in O(1). */
  private readonly ownNicks = new Map<string, string | null>();
  private idleTimer: NodeJS.Timeout | null = null;
  private readonly handlers: PoolHandlers;
  private readonly countQueued: (delta: number) => void;
  private readonly stats = () => this.collectStats();
  private readonly rejoiner: BotRejoiner;
  /** Lines said while we were away, from the history the server replays on join. */
  private readonly recovery: HistoryRecovery;

  constructor(
    readonly networkId: string,
    readonly config: NetworkConfig,
    private readonly store: DataStore,
    private readonly hooks: PoolHooks = NO_HOOKS,
  ) {
    super();
    // Made here, not as field initialisers: they read the constructor's parameters.
    this.handlers = poolHandlers({
      networkId,
      config,
      hooks,
      emit: this.emit.bind(this) as HandlerPool["emit"],
      puppetOf: (userId) => this.puppets.get(userId),
      recordOf: (userId) => this.records.get(userId),
      removeChannel: (userId, channel) => this.records.removeChannel(userId, channel),
      removePuppet: (puppet) => this.remove(puppet as Puppet),
      setNick: (connection, nick) => {
        this.forgetNick(connection);
        if (nick !== null) this.ownNicks.set(connection.casefold(nick), connection.options.owner);
      },
      channelLine: (connection, channel, msg) => this.broker.onLine(connection, channel, msg),
      connectionLost: (connection) => this.broker.onConnectionLost(connection),
      historyReplay: (connection, channel, lines) => this.recovery.onReplay(connection, channel, lines),
    });
    this.countQueued = (delta) => metrics.offlineQueued.inc({ network: networkId }, delta);
    const { pool } = config;
    this.scheduler = new ConnectScheduler(networkId, pool.connectsPerSecond, pool.maxConnectsInFlight, pool.throttlePauseMs);
    this.broker = new ChannelBroker(networkId, (channel) => this.connectionsIn(channel));
    this.broker.on("line", (msg) => {
      this.recovery.onLive(this.bot.casefold(msg.target), msg);
      this.emit("channelLine", msg);
    });
    poolStatsSources.add(this.stats);
    this.bot = this.createConnection(null, config.botNick, config.botUsername, null);
    this.records = new PuppetRecords(networkId, config, store, (name) => this.bot.casefold(name));
    this.recovery = new HistoryRecovery(networkId, new ChannelPositions(store, networkId), this.broker, {
      othersIn: (conn, channel) => this.connectionsIn(channel).some((c) => c !== conn),
      // Puppets come back after the bot: their old lines in its replay are known by the stored nicks.
      ownNicks: () => {
        const stored = new Set(this.records.all().map((r) => this.bot.casefold(r.nick)));
        return (nick) => this.isOwnNick(nick) || stored.has(this.bot.casefold(nick));
      },
      deliver: (msg) => this.emit("channelLine", msg),
    });
    this.roster = new ChannelRoster(this.bot);
    this.roster.on("change", (change) => this.emit("membership", change));
    this.roster.on("names", (channel, nicks) => this.emit("names", channel, nicks));
    this.rejoiner = new BotRejoiner(networkId, this.bot, (name) => hooks.isBridged(name), (channel, reason) => this.emit("botExcluded", channel, reason));
    this.bot.on("topic", ({ channel, topic, nick }) => {
      if (nick) this.emit("topic", { channel, topic, nick });
    });
    // Reactions, typing and redactions, heard once: by the bot, which is in every linked channel.
    this.bot.on("tagmsg", (m) => this.emit("tagmsg", m));
    this.bot.on("redact", (r) => this.emit("redact", r));
  }

  /**
   * `canary`: the bridge's own probe (see ops/Canary): none of its lines is read as channel
   * traffic, so what it says comes back only through the delivering connections (the bot's).
   */
  private createConnection(owner: string | null, nick: string, username: string, localAddress: string | null, canary = false): IrcConnection {
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
      realname: owner ?? `Matrix bridge ${canary ? "canary" : "bot"} for ${c.name}`,
      connectTimeoutMs: c.connectTimeoutMs,
      sendRate: c.sendRate,
      reconnect: true,
      scheduler: this.scheduler,
      localAddress,
      quiet: owner !== null || canary,
      encodingFallback: c.encodingFallback,
      owner,
      credentials: owner ? this.handlers.credentials : undefined,
      puppetNicks: this.ownNicks,
      channelLineSeen: (channel, msgid) => this.broker.skipSeen(channel, msgid),
    });
    wireConnection(connection, this.handlers, canary);
    return connection;
  }

  private forgetNick(connection: IrcConnection): void {
    const folded = connection.casefold(connection.nick);
    if (this.ownNicks.get(folded) === connection.options.owner) this.ownNicks.delete(folded);
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

  /** Loads the stored puppet records: before any event can ask for a puppet. */
  async load(): Promise<void> {
    await this.records.load();
    await this.recovery.positions.load();
  }

  async startBot(channels: { name: string; key: string | null }[]): Promise<void> {
    if (this.config.pool.idleTimeoutMs > 0) {
      const every = Math.max(1_000, Math.min(this.config.pool.idleTimeoutMs / 4, 60_000));
      this.idleTimer = setInterval(() => this.disconnectIdle(), every);
      this.idleTimer.unref();
    }
    // Wanted before connecting: if the first connect fails, the retry still joins them.
    for (const { name, key } of channels) this.bot.want(name, key);
    await this.bot.connect();
    await Promise.all(
      channels.map(({ name, key }) =>
        this.bot.join(name, key).catch((err: IrcFailure) => {
          if (err.code === "join_timeout") log.info("Bot's JOIN not answered yet; still wanted", { network: this.networkId, channel: name });
          else log.error("Bot could not join", { network: this.networkId, channel: name, error: err.message });
        }),
      ),
    );
  }

  /**
   * Reconnects the users active within the configured window and rejoins their channels that
   * `stillBridged` accepts; the scheduler paces them. Returns how many were started.
   */
  reconnectActiveUsers(stillBridged: (channelName: string) => string | null | false): number {
    const since = Date.now() - this.config.pool.reconnectActiveWithinMs;
    const recent = this.records.all().filter((r) => r.lastActiveAt >= since && r.channels.length > 0);
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

  /** A connection for the canary (see createConnection), paced and scheduled like the others; its owner quits it. */
  canaryConnection(nick: string): IrcConnection {
    return this.createConnection(null, nick, this.config.botUsername, null, true);
  }

  /** A channel line reached Matrix (or was found there): the channel's stored position moves to it. */
  reachedMatrix(msg: IrcMessage): void {
    this.recovery.positions.reachedMatrix(this.bot.casefold(msg.target), msg);
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
    const { maxMessages, ttlMs } = this.config.pool.offlineQueue;
    puppet.outbox ??= new Outbox(puppet.connection, maxMessages, ttlMs, this.countQueued);
    const delivered = puppet.outbox.send(message).then((msgids) => {
      if (isChannelName(message.target, puppet.connection.chanTypes) && puppet.connection.wants(message.target)) this.records.addChannel(puppet.record, message.target);
      return msgids;
    });
    return { delivered };
  }

  /** Connects the user (if needed) and joins a channel; rejects with the server's reason. */
  async join(userId: string, channelName: string, key: string | null): Promise<IrcConnection> {
    const puppet = await this.puppetFor(userId, true);
    await puppet.connection.connect();
    await puppet.connection.join(channelName, key);
    // The user may have left the room while the JOIN was on the way: then it is not theirs to keep.
    if (puppet.connection.wants(channelName)) this.records.addChannel(puppet.record, channelName);
    return puppet.connection;
  }

  /** Sets a channel's topic as the user; rejects with the server's reason (e.g. not a channel operator). */
  async setTopic(userId: string, channelName: string, key: string | null, topic: string): Promise<void> {
    await (await this.join(userId, channelName, key)).commands.setTopic(channelName, topic);
  }

  /** Kicks `nick` from a channel as the user; rejects with the server's reason. */
  async kick(userId: string, channelName: string, key: string | null, nick: string, reason: string): Promise<void> {
    await (await this.join(userId, channelName, key)).commands.kick(channelName, nick, reason);
  }

  /** The IRC nick a Matrix user's puppet has now, if connected. */
  nickOf(userId: string): string | null {
    const puppet = this.puppets.get(userId);
    return puppet && puppet.connection.state === "connected" ? puppet.connection.nick : null;
  }

  /** The user's stored IRC identity on this network (nick, account, channels), if any. */
  recordOf(userId: string): PuppetRecord | null {
    return this.records.get(userId);
  }

  /** The user's connection if it is open now (never opens one). */
  connectionOf(userId: string): IrcConnection | null {
    const puppet = this.puppets.get(userId);
    return puppet && puppet.connection.state === "connected" ? puppet.connection : null;
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
    await this.records.update(puppet.record, changes);
    if (changes.nick) puppet.connection.options.nick = changes.nick;
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
    if (record) await this.records.update(record, { channels: [] });
    if (puppet) await this.disconnect(puppet, message);
    return channels;
  }

  /** The user's puppet leaves a channel (they left or were removed from its room). */
  part(userId: string, channelName: string, message: string): void {
    this.records.removeChannel(userId, channelName);
    this.puppets.get(userId)?.connection.part(channelName, message);
  }

  /** Matrix users whose puppets are (or were last) in a channel. */
  usersIn(channelName: string): string[] {
    const folded = this.bot.casefold(channelName);
    return this.records.all().filter((r) => r.channels.some((c) => this.bot.casefold(c) === folded)).map((r) => r.userId);
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
    const record = await this.records.ensure(userId, () => this.hooks.displayNameOf(userId));
    const connection = this.createConnection(userId, record.nick, record.username, record.ipv6);
    const puppet: Puppet = { userId, connection, outbox: null, record, lastWrittenAt: 0, dropTimer: null, toldDrop: false };
    this.puppets.set(userId, puppet);
    return puppet;
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
      if (puppet.record.lastActiveAt < cutoff && (puppet.outbox?.depth ?? 0) === 0) {
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
      this.records.persist(puppet.record);
    }
  }

  async stop(): Promise<void> {
    if (this.idleTimer) clearInterval(this.idleTimer);
    this.rejoiner.stop();
    this.scheduler.stop();
    const all = this.allConnections();
    await Promise.all([...this.puppets.values()].map((p) => this.store.upsertPuppet(p.record).catch(() => undefined)));
    await Promise.all(all.map((c) => c.quit(this.config.quitMessage)));
    await this.recovery.positions.flush();
    poolStatsSources.delete(this.stats);
  }
}
