/**
 * Puts the pieces together and runs them: the store, the Matrix side (library Bridge with
 * the durable AS listener), one IRC pool per network, and the two relays between them.
 */
import { readFileSync } from "node:fs";
import { AppServiceRegistration, Bridge, MembershipCache } from "matrix-appservice-bridge";
import type { BridgeConfig } from "../config/schema.js";
import { templateRegex } from "../format/template.js";
import { IdentServer } from "../irc/IdentServer.js";
import { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import { DurableAppService } from "../matrix/DurableAppService.js";
import { Ghosts } from "../matrix/Ghosts.js";
import { configureLibraryLogging } from "../matrix/libraryLogging.js";
import { installHttpTimeout } from "../matrix/httpTimeout.js";
import { withRetry } from "../matrix/retry.js";
import { sendEventAt } from "../matrix/sendAt.js";
import { collectProcessMetrics, metrics, relayMetrics, roomQueueDeepestSources } from "../metrics/metrics.js";
import { Operations } from "../ops/Operations.js";
import type { Registration } from "../registration.js";
import { createDataStore } from "../store/createStore.js";
import type { DataStore, MessageLink } from "../store/DataStore.js";
import { MessageLinks } from "../store/MessageLinks.js";
import { OutgoingText } from "./OutgoingText.js";
import { TextLookups } from "./TextLookups.js";
import { IrcToMatrix } from "./IrcToMatrix.js";
import { DropLog } from "./DropLog.js";
import { KeyedQueue } from "./KeyedQueue.js";
import { MatrixToIrc } from "./MatrixToIrc.js";
import { MatrixEvents } from "./MatrixEvents.js";
import { MembershipSync } from "./MembershipSync.js";
import { Moderation } from "./Moderation.js";
import { Portals } from "./Portals.js";
import { PrivateMessages } from "./PrivateMessages.js";
import { TopicSync } from "./TopicSync.js";
import { ChanopSync } from "./ChanopSync.js";
import { ChannelModes } from "./ChannelModes.js";
import { PowerToModes } from "./PowerToModes.js";
import { AdminRooms } from "./admin/AdminRooms.js";
import { journalCopy } from "./admin/secrets.js";
import { Permissions } from "./Permissions.js";
import type { SecretBox } from "../security/SecretBox.js";
import { RoomLinks } from "./RoomLinks.js";
import { UserQuery } from "./UserQuery.js";
import { UserNotices } from "./UserNotices.js";
import { Provisioning } from "../provisioning/Provisioning.js";
import { ProvisioningApi } from "../http/ProvisioningApi.js";
import { MediaLinks } from "./MediaLinks.js";
import { askHomeserverToPing } from "../matrix/appservicePing.js";
import { Ircv3Interactions } from "./Ircv3Interactions.js";

const log = getLogger("bridge");

/** The version in package.json (dist/src/bridge → the package root). */
function bridgeVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

const TXN_RETENTION_MS = 24 * 60 * 60_000;
/** Event ID ↔ msgid pairs are kept this long (replies and edits to older lines lose their link). */
const MESSAGE_LINK_RETENTION_MS = 30 * 24 * 60 * 60_000;
const SHUTDOWN_DRAIN_MS = 10_000;

export class BridgeApp {
  private readonly store: DataStore;
  private readonly messageLinks: MessageLinks;
  private readonly links: RoomLinks;
  /** Per-room order of what the bridge sends into Matrix. */
  private readonly roomQueue: KeyedQueue;
  /** Per-room order of Matrix messages on their way to IRC: each direction has its own. */
  private readonly toIrcQueue: KeyedQueue;
  private membership: MembershipSync | null = null;
  private interactions: Ircv3Interactions | null = null;
  private readonly ghostMembership = new MembershipCache();
  private readonly deepestRoomQueue = () => Math.max(this.roomQueue.deepest, this.toIrcQueue.deepest);
  private readonly pools = new Map<string, NetworkPool>();
  private readonly bridgeUserPatterns: RegExp[];
  private readonly botUserId: string;
  private matrixBridge!: Bridge;
  private appService!: DurableAppService;
  private matrixToIrc!: MatrixToIrc;
  private pruneTimer: NodeJS.Timeout | null = null;
  private identServer: IdentServer | null = null;
  private readonly permissions: Permissions;
  private readonly userNotices: UserNotices;
  private adminRooms!: AdminRooms;
  private chanops!: ChanopSync;
  /** Rooms bridged by their moderators; `provisioning.requests` is the LinkProvisioner the HTTP API serves. */
  provisioning!: Provisioning;
  private provisioningApi: ProvisioningApi | null = null;
  private stopping: Promise<void> | null = null;
  /** Media links (`media.publicUrl`); null when the bridge serves no media. */
  private media: MediaLinks | null = null;
  private ops: Operations | null = null;

  constructor(
    private readonly config: BridgeConfig,
    private readonly registration: Registration,
    private readonly secrets: SecretBox | null = null,
  ) {
    this.store = createDataStore(config.store);
    this.messageLinks = new MessageLinks(this.store, { max: config.store.maxMessageLinks });
    this.roomQueue = this.cappedQueue("Room queue towards Matrix is full: new items are dropped (the homeserver is too slow?)", (depth) => relayMetrics.roomQueueDepth.set(depth));
    this.toIrcQueue = this.cappedQueue("Room queue towards IRC is full: new messages are refused and their senders told");
    roomQueueDeepestSources.add(this.deepestRoomQueue);
    this.links = new RoomLinks(this.store, secrets);
    this.permissions = new Permissions(config.permissions);
    this.userNotices = new UserNotices(config, () => this.adminRooms, () => this.matrixBridge.getIntent());
    const domain = config.homeserver.domain;
    this.botUserId = `@${registration.sender_localpart}:${domain}`;
    this.bridgeUserPatterns = Object.values(config.networks).map((n) => new RegExp(`^${templateRegex("@", n.ghostUserTemplate, domain)}$`));
  }

  /** A per-room queue capped by `queues.*`, whose refusals are counted and logged (throttled). */
  private cappedQueue(whenFull: string, onDepth?: (depth: number) => void): KeyedQueue {
    const refused = new DropLog((message, meta) => log.warn(message, meta), whenFull);
    const queue: KeyedQueue = new KeyedQueue(onDepth, { maxPerKey: this.config.queues.roomMaxDepth, maxTotal: this.config.queues.totalMaxDepth }, (err, kind) => {
      metrics.roomQueueDropped.inc({ kind, scope: err.scope });
      refused.dropped(err.scope === "key" ? err.key : "(all rooms)", { room: err.key, kind, cap: err.scope, roomDepth: queue.depthOf(err.key), totalDepth: queue.depth });
    });
    return queue;
  }

  /** A user the bridge itself puppets on the Matrix side (the bot or a ghost). */
  isBridgeUser(userId: string): boolean {
    return userId === this.botUserId || this.bridgeUserPatterns.some((re) => re.test(userId));
  }

  /**
   * Starts in phases, so nothing runs against half-made state: (1) load everything (store,
   * links, the homeserver connection, each network's puppet records, admin rooms); (2)
   * construct the parts with their collaborators; (3) replay the journal; (4) only then listen
   * for new transactions; (5) connect to IRC and the rooms. A replayed event of a user whose
   * record was not loaded yet would otherwise rebuild it from scratch (nick, password, channels).
   */
  async start(): Promise<void> {
    const { config } = this;
    installHttpTimeout(config.homeserver.requestTimeoutMs);
    configureLibraryLogging(config.logging.level === "debug" ? "info" : "warn", config.logging.format === "json");
    if (config.metrics.enabled) collectProcessMetrics();

    // 1. Load.
    await this.store.open();
    this.media = MediaLinks.open(config, this.store, this.registration.as_token);
    await this.media?.load();
    await this.links.load(config);
    await this.messageLinks.load();
    this.matrixBridge = new Bridge({
      homeserverUrl: config.homeserver.url,
      domain: config.homeserver.domain,
      registration: AppServiceRegistration.fromObject(this.registration as never),
      disableStores: true,
      membershipCache: this.ghostMembership,
      disableContext: true,
      suppressEcho: false,
      queue: { type: "none", perRequest: false },
      controller: { onEvent: (request) => request.resolve(undefined) },
      logRequestOutcome: false,
    });
    await withRetry(() => this.matrixBridge.initialise(), {
      giveUpAfterMs: 5 * 60_000,
      onRetry: (err, attempt) => log.warn("Homeserver not reachable yet; retrying", { attempt, error: (err as Error).message }),
    });

    // 2. Construct, with collaborators passed in.
    const appService = this.construct();
    // /ready answers from here on (503 until the bots are in their channels), on its own port if set.
    await this.ops!.listen(appService.expressApp);
    await Promise.all([...this.pools.values()].map((pool) => pool.load()));
    await this.adminRooms.load();
    await this.chanops.load();
    await this.provisioning.load();

    // 3. Replay what was acknowledged before the last stop; 4. then take new transactions.
    await appService.replayJournal();
    await this.matrixBridge.listen(config.appservice.port, config.appservice.bindAddress, 10, appService);
    appService.finishRoutes();
    await this.provisioningApi?.start();
    log.info("Appservice listening", { address: config.appservice.bindAddress, port: config.appservice.port });
    await this.media?.listen();
    const prune = () =>
      Promise.all([this.store.pruneTransactions(TXN_RETENTION_MS), this.messageLinks.pruneOld(MESSAGE_LINK_RETENTION_MS)]).catch((err: Error) =>
        log.warn("Pruning the store failed", { error: err.message }),
      );
    await prune();
    this.pruneTimer = setInterval(() => void prune(), 60 * 60_000);
    this.pruneTimer.unref();

    // 5. Connect.
    if (this.identServer) await this.identServer.listen(config.ident.port, config.ident.bindAddress);
    await Promise.all([this.joinLinkedRooms(), ...[...this.pools].map(([id, pool]) => this.startPool(id, pool))]);
    this.ops!.startCanaries();
    await askHomeserverToPing(config.homeserver, this.registration);
    log.info("Bridge started", { networks: [...this.pools.keys()], rooms: this.links.allRooms().length });
  }

  /** Makes every part with what it needs; returns the appservice listener (not listening yet). */
  private construct(): DurableAppService {
    const { config } = this;
    const ghosts = new Ghosts(this.matrixBridge, this.store, config, this.ghostMembership);
    const bot = () => this.matrixBridge.getIntent();
    const notice = async (roomId: string, text: string) => {
      await bot().sendMessage(roomId, { msgtype: "m.notice", body: text });
    };
    const displayNameOf = async (userId: string) => {
      const profile = await bot().getProfileInfo(userId, "displayname").catch(() => null);
      return profile?.displayname ?? null;
    };
    const membership = new MembershipSync(config, this.links, ghosts, async (roomId) => Object.keys(await this.matrixBridge.getBot().getJoinedMembers(roomId)));
    this.membership = membership;
    const linked = (links: MessageLink[]) => this.messageLinks.add(links);
    const ircToMatrix = new IrcToMatrix(config, this.links, ghosts, this.roomQueue, {
      onLinked: linked,
      onGhostInRoom: (roomId, userId) => membership.noteGhost(roomId, userId),
      onQueued: (roomId, userId) => membership.holdFor(roomId, userId),
      wantsMentions: (userId) => this.adminRooms.feature(userId, "mentions"),
      linkOfMsgid: (networkId, msgid) => this.messageLinks.byMsgid(networkId, msgid),
      onDelivered: (eventId, userId) => outgoingText.noteSender(eventId, userId),
      takenByCanary: (networkId, msg) => this.ops?.takenByCanary(networkId, msg) ?? false,
    });
    // Channel modes and power levels need each other (+m is an events_default): modes is set below.
    let modes: ChannelModes | null = null;
    // A room newly linked to a channel the bot is in (a portal, a plumbed room): its members, levels and modes sync.
    const onLinked = (pool: NetworkPool, channelName: string) => {
      membership.syncLinked(pool, channelName);
      this.chanops.linked(pool, channelName);
      modes?.linked(pool, channelName);
    };
    const portals = new Portals(config, this.links, this.pools, bot, onLinked);
    const topics = new TopicSync(config, this.links, this.pools, ghosts, this.roomQueue, { bot, notice });
    const moderation = new Moderation(config, this.links, this.pools, ghosts, membership, portals, { bot, notice, notifyUser: (u, t) => this.userNotices.notify(u, t) });
    const lookups = new TextLookups(bot, this.pools, ghosts, this.messageLinks);
    const outgoingText = new OutgoingText(config, lookups);
    const joinedMembers = async (roomId: string) => Object.keys(await this.matrixBridge.getBot().getJoinedMembers(roomId));
    const provisioning = (this.provisioning = new Provisioning({ config, store: this.store, links: this.links, pools: this.pools, permissions: this.permissions, secrets: this.secrets, ghosts, bot, botUserId: this.botUserId, joinedMembers, onLinked }));
    const chanops = new ChanopSync(config, this.links, ghosts, this.store, this.roomQueue, {
      bot,
      botUserId: this.botUserId,
      notice,
      joinedMembers,
      moderated: (ref) => modes?.moderated(ref) ?? false,
      modesKnown: (ref) => modes?.knows(ref) ?? false,
    });
    modes = new ChannelModes(config, this.links, chanops, this.roomQueue, bot);
    this.chanops = chanops;
    const pms = new PrivateMessages(config, this.store, this.pools, ghosts, this.roomQueue, {
      isIgnored: (userId, networkId, nick) => this.adminRooms.isIgnored(userId, networkId, nick),
      tellUser: (userId, text) => this.adminRooms.notify(userId, text),
      stopping: () => this.stopping !== null,
      wantsMentions: (userId) => this.adminRooms.feature(userId, "mentions"),
      // A PM needs no `nick: ` address; edits and reply tags as in channels.
      linesFor: (networkId, roomId, eventId, sender, content) => outgoingText.linesFor(networkId, roomId, eventId, sender, content, false),
      media: this.media?.signer ?? null,
    });
    const interactions = new Ircv3Interactions({
      config,
      links: this.links,
      pools: this.pools,
      messageLinks: this.messageLinks,
      ghosts,
      roomQueue: this.roomQueue,
      bot,
      bridgesUser: (userId) => !this.isBridgeUser(userId) && this.permissions.mayUse(userId),
      redactedByBridge: async (roomId, eventId) => this.media?.redactions.redact(roomId, eventId),
    });
    this.interactions = interactions;
    for (const [networkId, network] of Object.entries(config.networks)) {
      const isBridged = (channelName: string) => this.links.roomsOf(networkId, pool.bot.casefold(channelName)).length > 0 || !!this.ops?.isCanaryChannel(pool, channelName);
      const pool: NetworkPool = new NetworkPool(networkId, network, this.store, { displayNameOf, openPassword: (sealed) => this.openPassword(sealed), isBridged });
      for (const part of [ircToMatrix, membership, topics, moderation, pms, chanops, modes, provisioning, interactions]) part.attach(pool);
      pool.on("userNotice", (userId, text) => this.userNotices.notify(userId, text));
      pool.on("connectionNotice", (userId, text) => this.userNotices.inform(userId, text));
      pool.on("botExcluded", (channel, reason) => {
        const text = `The bridge bot was kicked from ${channel} on ${network.name} and cannot rejoin (${reason}): lines said there reach Matrix only while your own connection is in the channel.`;
        for (const userId of pool.usersIn(channel)) this.userNotices.inform(userId, text);
      });
      this.pools.set(networkId, pool);
    }
    if (config.ident.enabled) {
      this.identServer = new IdentServer((local, remote) => {
        for (const pool of this.pools.values()) {
          const username = pool.identFor(local, remote);
          if (username) return username;
        }
        return null;
      });
    }
    this.adminRooms = new AdminRooms(config, this.store, this.pools, this.permissions, bot, { config, links: this.links, portals, ghosts, secrets: this.secrets, bot, version: bridgeVersion() }, (roomId, inviter) => provisioning.roomCommands.welcome(roomId, inviter));
    this.matrixToIrc = new MatrixToIrc(
      config,
      this.links,
      this.pools,
      this.roomQueue,
      this.toIrcQueue,
      {
        stopping: () => this.stopping !== null,
        notice,
        tellUser: (userId, roomId, text) => this.userNotices.tell(userId, roomId, text),
        sendAsIrcUser: async (networkId, nick, roomId, content) => {
          const intent = await ghosts.intentFor(networkId, config.networks[networkId], nick, this.pools.get(networkId)?.bot.caseMapping);
          await sendEventAt(intent, roomId, "m.room.message", content);
        },
        removeFromRoom: async (roomId, userId, reason) => {
          await bot().kick(roomId, userId, reason);
        },
        roomLineLimit: (roomId) => lookups.roomLineLimit(roomId),
      },
      linked,
      outgoingText,
      this.media?.longMessagePolicy(bot),
      this.media?.signer ?? null,
    );
    const events = new MatrixEvents({
      botUserId: this.botUserId,
      permissions: this.permissions,
      admin: this.adminRooms,
      notice,
      isBridgeUser: (userId) => this.isBridgeUser(userId),
      links: this.links,
      matrixToIrc: this.matrixToIrc,
      topics,
      moderation,
      pms,
      powerToModes: new PowerToModes(config, this.links, this.pools, ghosts, notice),
      botJoin: async (roomId) => void (await bot().join(roomId)),
      usedRoom: (userId, roomId) => this.userNotices.usedRoom(userId, roomId),
      roomCommands: provisioning.roomCommands,
      botRemoved: (roomId, by) => provisioning.requests.botRemoved(roomId, by),
      ...(this.media ? { onMediaRedaction: (event) => this.media!.redactions.onRedaction(event) } : {}),
      interactions,
    });
    const userQuery = new UserQuery(ghosts, this.pools, this.store, this.links);
    this.appService = new DurableAppService(this.registration.hs_token, this.store, {
      sink: (event) => events.handle(event),
      aliasQuery: (alias) => portals.onAliasQuery(alias),
      userQuery: (userId) => userQuery.exists(userId),
      // Secrets are scrubbed where commands are read (admin rooms): elsewhere a line that looks
      // like `!storepass x` is chat, relayed as typed, and must survive a crash like any other.
      journalCopy: (event) => (this.adminRooms.isAdminRoom(String(event.room_id)) ? journalCopy(event, Object.keys(config.networks)) : event),
      ignored: (event) => typeof event.sender === "string" && this.isBridgeUser(event.sender),
    });
    // Typing (ephemeral): handled as it comes, never journalled.
    this.appService.on("ephemeral", (event: Record<string, unknown>) => interactions.onEphemeral(event));
    // Off unless configured; on the appservice app, or on a port of its own.
    if (config.provisioning.http.enabled) this.provisioningApi = new ProvisioningApi(config.provisioning.http, this.provisioning.provisioner, this.store, this.appService.expressApp);
    this.media?.mount(this.appService.expressApp);
    this.ops = new Operations(config, {
      store: this.store,
      pools: this.pools,
      linkedChannels: (networkId) => this.links.channelsOfNetwork(networkId).map((c) => c.name),
      journal: () => this.appService.pendingEvents(),
      pingHomeserver: (timeoutMs) => bot().matrixClient.doRequest("GET", "/_matrix/client/versions", null, null, timeoutMs),
    });
    return this.appService;
  }

  private async startPool(networkId: string, pool: NetworkPool): Promise<void> {
    try {
      await pool.startBot(this.links.channelsOfNetwork(networkId));
    } catch (err) {
      // The bot's connection retries by itself; the bridge keeps serving the other networks.
      log.error("Bridge bot could not connect yet", { network: networkId, error: (err as Error).message });
    }
    pool.reconnectActiveUsers((channelName) => {
      const folded = pool.bot.casefold(channelName);
      return this.links.roomsOf(networkId, folded).length > 0 ? this.links.keyOf(networkId, folded) : false;
    });
  }

  private openPassword(sealed: string): string | null {
    try {
      return this.secrets?.open(sealed) ?? null;
    } catch (err) {
      log.warn("A stored password cannot be opened (was credentials.keyFile changed?)", { error: (err as Error).message });
      return null;
    }
  }

  private async joinLinkedRooms(): Promise<void> {
    const bot = this.matrixBridge.getIntent();
    await Promise.all(
      this.links.allRooms().map((roomId) =>
        bot.join(roomId).catch((err: Error) =>
          log.warn("Bot could not join a linked room; invite it there", { roomId, error: err.message }),
        ),
      ),
    );
  }

  /** Stops taking transactions, lets work in hand finish (bounded), says QUIT on IRC, closes the store. */
  stop(reason: string): Promise<void> {
    this.stopping ??= this.shutdown(reason);
    return this.stopping;
  }

  private async shutdown(reason: string): Promise<void> {
    log.info("Shutting down", { reason });
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    await this.appService?.close().catch(() => undefined);
    await this.provisioningApi?.stop();
    await this.media?.close();
    await this.ops?.stop();
    await this.appService?.drain(SHUTDOWN_DRAIN_MS);
    await Promise.race([Promise.all([this.roomQueue.idle(), this.toIrcQueue.idle(), this.membership?.idle()]), new Promise((r) => setTimeout(r, SHUTDOWN_DRAIN_MS).unref())]);
    this.membership?.stop();
    this.provisioning?.stop();
    this.interactions?.stop();
    roomQueueDeepestSources.delete(this.deepestRoomQueue);
    await Promise.all([...this.pools.values()].map((p) => p.stop()));
    await this.identServer?.close();
    await this.messageLinks.flush();
    await this.store.close();
    log.info("Stopped");
  }
}
