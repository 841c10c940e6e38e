/**
 * The one provisioning flow behind the `!irc` room command and the HTTP API (LinkProvisioner):
 * the checks, the operator asked by PM (OpAnswers routes their answers here), the requests
 * waiting for them (stored, with deadlines), the outcomes told in the room, and the link.
 *
 * A link made here has origin `plumbed`: the bot joins the channel (with its key, stored
 * sealed), and the same callback as a new portal's syncs members, chanops and modes in (those
 * leave a plumbed room's join rule, directory entry and events_default to its moderators).
 */
import type { BridgeConfig } from "../config/schema.js";
import { CHANNEL_NAME } from "../config/schema.js";
import { isChannelName } from "../format/ircText.js";
import { isValidNick } from "../format/nick.js";
import { channelAllowed } from "../format/patterns.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import { metrics } from "../metrics/metrics.js";
import type { Permissions } from "../bridge/Permissions.js";
import { RateLimiter } from "../bridge/RateLimiter.js";
import type { RoomLinks } from "../bridge/RoomLinks.js";
import type { SecretBox } from "../security/SecretBox.js";
import type { DataStore } from "../store/DataStore.js";
import { ChannelOps, holdsOp } from "./ChannelOps.js";
import { PendingRequests, type PendingLink } from "./PendingRequests.js";
import type { RoomSide } from "./RoomSide.js";
import {
  ProvisioningError,
  type LinkInfo,
  type LinkOutcome,
  type LinkProvisioner,
  type LinkRequestInput,
  type NetworkInfo,
  type UnlinkInput,
} from "./types.js";
import type { Unlinker } from "./Unlinker.js";
import { plainForIrc } from "./parse.js";

const log = getLogger("provisioning");

export interface LinkRequestDeps {
  config: BridgeConfig;
  store: DataStore;
  links: RoomLinks;
  pools: Map<string, NetworkPool>;
  permissions: Permissions;
  secrets: SecretBox | null;
  room: RoomSide;
  unlinker: Unlinker;
  botUserId: string;
  /** A room was just linked to a channel the bot is in: members, chanops and modes sync in. */
  onLinked(pool: NetworkPool, channelName: string): void;
}

/** "5 minutes", "30 seconds": a span as people read it. */
export function spanOf(ms: number): string {
  const [n, unit] = ms < 90_000 ? [Math.max(1, Math.round(ms / 1000)), "second"] : [Math.round(ms / 60_000), "minute"];
  return `${n} ${unit}${n === 1 ? "" : "s"}`;
}

/** "00:41 UTC": a deadline as people read it in a PM. */
/** A private message to an operator stays one IRC line. */
const OP_MESSAGE_MAX = 400;
const clock = (at: number) => `${new Date(at).toISOString().slice(11, 16)} UTC`;

export class LinkRequests implements LinkProvisioner {
  readonly pending: PendingRequests;
  private readonly ops = new ChannelOps();
  /** Keys given with requests when the bridge cannot seal them (no credentials key): lost at a restart. */
  private readonly keysInMemory = new Map<string, string>();
  /** Operators asked per requester: each request is a PM from the bot, and IRC networks punish bots that flood. */
  private readonly askLimiter = new RateLimiter({ burst: 5, perMinute: 2 });
  /**
   * Per network, whoever asks: requester IDs cost nothing to make (any homeserver's users can
   * use the API), and a bot that PMs many operators fast gets K-lined, taking the network's
   * bridging down with it.
   */
  private readonly opMessages = new RateLimiter({ burst: 10, perMinute: 6 });
  /** Rooms the bot joins because of a request, across the bridge (joining a large room is costly for the homeserver). */
  private readonly roomJoins = new RateLimiter({ burst: 10, perMinute: 10 });

  constructor(private readonly d: LinkRequestDeps) {
    this.pending = new PendingRequests(d.store, (request) => void this.expired(request));
  }

  /** Re-arms the stored requests (start-up, before IRC connects). */
  load(): Promise<void> {
    return this.pending.load();
  }

  stop(): void {
    this.pending.stop();
  }

  /** Follows the operators of pending requests in the channels the bot is in: a part, a quit or a lost +o fails the request. */
  attach(pool: NetworkPool): void {
    pool.roster.on("change", (change) => {
      const nick = change.type === "rename" ? change.oldNick : change.nick;
      const request = this.pending.of(pool.networkId, pool.bot.casefold(nick));
      if (!request) return;
      if (change.type === "rename") return void this.pending.rename(pool.networkId, request.opFolded, change.newNick, pool.bot.casefold(change.newNick)).catch(() => undefined);
      if (change.type === "leave" && pool.bot.casefold(change.channel) === request.channel) {
        void this.failed(request, `${request.opNick} left ${request.channelName} before answering`);
      }
    });
    pool.roster.on("prefixes", (channel) => {
      const folded = pool.bot.casefold(channel);
      for (const request of this.pending.all()) {
        if (request.networkId !== pool.networkId || request.channel !== folded || !pool.roster.membersOf(channel).some((n) => pool.bot.casefold(n) === request.opFolded)) continue;
        if (!holdsOp(pool.roster.prefixesOf(channel, request.opNick), pool.bot.prefixModes)) void this.failed(request, `${request.opNick} is no longer an operator of ${request.channelName}`);
      }
    });
  }

  networks(): NetworkInfo[] {
    return [...this.d.pools.values()].map((pool) => ({ networkId: pool.networkId, name: pool.config.name, domain: pool.config.address, botUserId: this.d.botUserId }));
  }

  async channelOps(networkId: string, channel: string): Promise<string[]> {
    const pool = this.pool(networkId);
    const channelName = this.channelName(pool, channel);
    return this.opsOf(pool, channelName);
  }

  async requestLink(input: LinkRequestInput): Promise<LinkOutcome> {
    const pool = this.pool(input.networkId);
    const channelName = this.channelName(pool, input.channel);
    const channel = pool.bot.casefold(channelName);
    const admin = this.d.permissions.isAdmin(input.userId);
    if (input.noApproval && !admin) throw new ProvisioningError("IRC_NOT_ENOUGH_POWER", "only bridge admins may link a room without an operator's approval", 403);
    // The one check every way in passes (the room command gets it earlier too; the API only here).
    if (!this.d.permissions.mayUse(input.userId)) throw new ProvisioningError("IRC_NOT_ENOUGH_POWER", `${input.userId} is not allowed to use this bridge`, 403);
    const wasIn = await this.d.room.botIsIn(input.roomId);
    if (!wasIn) {
      if (!this.roomJoins.take("joins")) throw new ProvisioningError("M_AS_LIMIT_EXCEEDED", "the bridge is joining too many rooms for link requests; try again in a minute", 429);
      await this.d.room.join(input.roomId).catch((err: Error) => {
        throw new ProvisioningError("M_UNKNOWN", `the bridge bot cannot join the room (invite it first): ${err.message}`, 400);
      });
    }
    try {
      return await this.askOrLink(input, pool, channelName, channel, admin);
    } catch (err) {
      // A refused request leaves no bot behind in a room it joined only for it.
      if (!wasIn && this.d.links.channelsOf(input.roomId).length === 0 && !this.pending.all().some((r) => r.roomId === input.roomId)) await this.d.room.leave(input.roomId);
      throw err;
    }
  }

  private async askOrLink(input: LinkRequestInput, pool: NetworkPool, channelName: string, channel: string, admin: boolean): Promise<LinkOutcome> {
    await this.checkModerator(input.roomId, input.userId, "bridge it");
    if (this.d.links.roomsOf(pool.networkId, channel).includes(input.roomId)) {
      throw new ProvisioningError("IRC_EXISTING_MAPPING", `this room is already linked to ${channelName} on ${pool.config.name}`, 409);
    }
    const waiting = this.pending.forRoom(input.roomId, pool.networkId, channel);
    if (waiting) throw new ProvisioningError("IRC_EXISTING_REQUEST", `${waiting.opNick} has not answered the request to link this room to ${channelName} yet`, 409);
    this.checkLimit(pool, input.roomId);
    if (input.noApproval) {
      await this.link(pool, { roomId: input.roomId, channel, channelName, userId: input.userId, key: input.key ?? null }, ` by ${input.userId}, a bridge admin`);
      metrics.provisioning.inc({ outcome: "linked" });
      return { status: "linked" };
    }
    if (!input.opNick || !isValidNick(input.opNick)) {
      throw new ProvisioningError("IRC_BAD_OPERATOR_TARGET", `name an operator of ${channelName} to ask (${input.opNick ? `${JSON.stringify(input.opNick)} is not a nick` : "no nick given"})`, 400);
    }
    const ops = await this.opsOf(pool, channelName);
    const opNick = ops.find((n) => pool.bot.casefold(n) === pool.bot.casefold(input.opNick!));
    if (!opNick) {
      const list = ops.length > 0 ? `its operators now: ${ops.join(", ")}` : "nobody holds +o there now (or the channel does not exist)";
      throw new ProvisioningError("IRC_BAD_OPERATOR_TARGET", `${input.opNick} is not an operator of ${channelName} on ${pool.config.name}; ${list}`, 400);
    }
    const opFolded = pool.bot.casefold(opNick);
    if (this.pending.of(pool.networkId, opFolded)) {
      throw new ProvisioningError("IRC_EXISTING_REQUEST", `${opNick} already has a request waiting for their answer (one at a time); try again later or ask another operator`, 409);
    }
    if (!this.askLimiter.take(input.userId) || !this.opMessages.take(pool.networkId)) {
      metrics.rateLimited.inc({ kind: "link_request", network: pool.networkId });
      const seconds = Math.max(1, Math.ceil(this.askLimiter.retryAfterMs(input.userId) / 1000));
      throw new ProvisioningError("M_AS_LIMIT_EXCEEDED", `too many link requests too fast; try again in ${seconds} s`, 429);
    }
    const now = Date.now();
    const request: PendingLink = {
      networkId: pool.networkId,
      channel,
      channelName,
      roomId: input.roomId,
      userId: input.userId,
      opNick,
      opFolded,
      sealedKey: input.key && this.d.secrets ? this.d.secrets.seal(input.key) : null,
      createdAt: now,
      expiresAt: now + this.d.config.provisioning.requestTimeoutSeconds * 1000,
    };
    if (input.key && !this.d.secrets) log.warn("No credentials.keyFile: a channel key given with a link request is kept in memory only", { network: pool.networkId, channel: channelName });
    if (input.key) this.keysInMemory.set(`${pool.networkId}\u0000${opFolded}`, input.key);
    await this.pending.add(request);
    try {
      const roomName = await this.d.room.nameOf(input.roomId);
      await pool.bot.whenConnected(pool.config.connectTimeoutMs);
      await pool.bot.send(
        "privmsg",
        opNick,
        plainForIrc(`${plainForIrc(input.userId, 100)} asks to bridge the Matrix room "${plainForIrc(roomName, 80)}" (https://matrix.to/#/${plainForIrc(input.roomId, 100)}) to ${channelName}. Do you agree? Answer yes or no by ${clock(request.expiresAt)}.`, OP_MESSAGE_MAX),
      );
    } catch (err) {
      this.pending.take(request);
      throw new ProvisioningError("M_UNKNOWN", `the bridge could not send ${opNick} a private message: ${(err as Error).message}`, 502);
    }
    metrics.provisioning.inc({ outcome: "asked" });
    log.info("Asked a channel operator to approve a link", { network: pool.networkId, channel: channelName, roomId: input.roomId, userId: input.userId, op: opNick });
    await this.d.room.bridging(input.roomId, pool.networkId, channelName, "pending", input.userId);
    return { status: "pending", opNick, expiresAt: request.expiresAt };
  }

  /** The operator answered yes: still an operator? then link. */
  async approve(pool: NetworkPool, request: PendingLink, answeringNick: string): Promise<void> {
    if (!this.pending.take(request)) return;
    const key = this.keyOf(request);
    let op: string | undefined;
    try {
      op = (await this.opsOf(pool, request.channelName)).find((n) => pool.bot.casefold(n) === pool.bot.casefold(answeringNick));
    } catch (err) {
      return this.settle(request, "failed", `the bridge could not check that ${answeringNick} is still an operator of ${request.channelName}: ${(err as Error).message}`);
    }
    if (!op) return this.settle(request, "failed", `${answeringNick} is no longer an operator of ${request.channelName}`);
    try {
      await this.link(pool, { roomId: request.roomId, channel: request.channel, channelName: request.channelName, userId: request.userId, key }, `: ${op} approved it`);
    } catch (err) {
      return this.settle(request, "failed", (err as Error).message);
    }
    metrics.provisioning.inc({ outcome: "approved" });
    await this.sayToOp(pool, op, `Thank you: the Matrix room is now bridged to ${request.channelName}. Send me "!unlink ${request.channelName}" to undo it.`);
  }

  /** The operator answered no. */
  async refuse(pool: NetworkPool, request: PendingLink): Promise<void> {
    if (!this.pending.take(request)) return;
    await this.settle(request, "refused", `${request.opNick} refused it`);
    await this.sayToOp(pool, request.opNick, `OK: the room will not be bridged to ${request.channelName}.`);
  }

  /** Anything but yes or no: a one-line reminder. */
  async remind(pool: NetworkPool, request: PendingLink): Promise<void> {
    await this.sayToOp(pool, request.opNick, `Please answer yes or no: may ${plainForIrc(request.userId, 100)} bridge their Matrix room to ${request.channelName}? (until ${clock(request.expiresAt)})`);
  }

  private async expired(request: PendingLink): Promise<void> {
    await this.settle(request, "expired", `no answer from ${request.opNick} within ${spanOf(request.expiresAt - request.createdAt)}`);
    const pool = this.d.pools.get(request.networkId);
    if (pool?.bot.state === "connected") await this.sayToOp(pool, request.opNick, `The request to bridge a Matrix room to ${request.channelName} has expired.`);
  }

  private async failed(request: PendingLink, why: string): Promise<void> {
    if (this.pending.take(request)) await this.settle(request, "failed", why);
  }

  /** A request that did not end in a link: the room hears why, and m.room.bridging says failure. */
  private async settle(request: PendingLink, outcome: "refused" | "expired" | "failed", why: string): Promise<void> {
    this.keysInMemory.delete(`${request.networkId}\u0000${request.opFolded}`);
    metrics.provisioning.inc({ outcome });
    log.info("A link request ended without a link", { network: request.networkId, channel: request.channelName, roomId: request.roomId, outcome, why });
    const name = this.d.config.networks[request.networkId]?.name ?? request.networkId;
    await this.d.room.bridging(request.roomId, request.networkId, request.channelName, "failure", request.userId, why);
    await this.d.room.notice(request.roomId, `${request.userId}: this room was not linked to ${request.channelName} on ${name}: ${why}.`);
  }

  private keyOf(request: PendingLink): string | null {
    const id = `${request.networkId}\u0000${request.opFolded}`;
    const inMemory = this.keysInMemory.get(id) ?? null;
    this.keysInMemory.delete(id);
    if (!request.sealedKey || !this.d.secrets) return inMemory;
    try {
      return this.d.secrets.open(request.sealedKey);
    } catch {
      log.warn("A link request's channel key cannot be opened (was credentials.keyFile changed?)", { network: request.networkId, channel: request.channelName });
      return inMemory;
    }
  }

  /** The bot joins the channel, the link is stored (origin plumbed), members sync in, the room hears it (`how` ends its notice). */
  private async link(pool: NetworkPool, target: { roomId: string; channel: string; channelName: string; userId: string; key: string | null }, how: string): Promise<void> {
    const { roomId, channel, channelName, userId, key } = target;
    try {
      await pool.bot.whenConnected(pool.config.connectTimeoutMs);
      await pool.bot.join(channelName, key ?? this.d.links.keyOf(pool.networkId, channel));
    } catch (err) {
      throw new Error(`the bridge could not join ${channelName} on ${pool.config.name}: ${(err as Error).message}`);
    }
    await this.d.links.add({ roomId, networkId: pool.networkId, channel, channelName, origin: "plumbed" });
    if (key) await this.d.links.setKey(pool.networkId, channel, key);
    log.info("Linked a room to a channel", { roomId, network: pool.networkId, channel: channelName, userId });
    this.d.onLinked(pool, channelName);
    await this.d.room.bridging(roomId, pool.networkId, channelName, "success", userId);
    await this.d.room.bridgeInfo(roomId, pool.networkId, pool.config.name, channelName, userId);
    await this.d.room.notice(roomId, `This room is now linked to ${channelName} on ${pool.config.name}${how}. Messages go both ways from now on.`);
  }

  async unlink(input: UnlinkInput): Promise<void> {
    const pool = this.pool(input.networkId);
    const channelName = this.channelName(pool, input.channel, false);
    const channel = pool.bot.casefold(channelName);
    const link = this.d.links.linksOf(input.roomId).find((l) => l.networkId === pool.networkId && l.channel === channel);
    if (!link) throw new ProvisioningError("IRC_NOT_LINKED", `this room is not linked to ${channelName} on ${pool.config.name}`, 404);
    if (link.origin === "config") throw new ProvisioningError("M_UNKNOWN", `this room is linked to ${channelName} in the bridge's config: only its admin can change that`, 400);
    if (!this.d.permissions.isAdmin(input.userId)) await this.checkModerator(input.roomId, input.userId, "unlink it");
    await this.d.unlinker.unlink(input.roomId, pool, channel, link.channelName, `at the request of ${input.userId}`);
  }

  /** The operator of a channel asked (`!unlink #chan` by PM) to unlink the rooms its moderators plumbed. */
  async unlinkByOp(pool: NetworkPool, nick: string, channelName: string | null): Promise<void> {
    if (!channelName || !isChannelName(channelName, pool.bot.chanTypes)) return this.sayToOp(pool, nick, "Say which channel: !unlink #channel");
    const channel = pool.bot.casefold(channelName);
    const plumbed = this.d.links.roomsOf(pool.networkId, channel).filter((roomId) => this.d.links.linksOf(roomId).some((l) => l.networkId === pool.networkId && l.channel === channel && l.origin === "plumbed"));
    if (plumbed.length === 0) return this.sayToOp(pool, nick, `No Matrix room was bridged to ${channelName} by its moderators.`);
    const op = await this.opsOf(pool, channelName).then((ops) => ops.find((n) => pool.bot.casefold(n) === pool.bot.casefold(nick))).catch(() => undefined);
    if (!op) return this.sayToOp(pool, nick, `Only an operator of ${channelName} may unlink it.`);
    for (const roomId of plumbed) await this.d.unlinker.unlink(roomId, pool, channel, channelName, `by ${op}, an operator of the channel on IRC`);
    await this.sayToOp(pool, nick, `Done: ${channelName} is unlinked from ${plumbed.length} Matrix room${plumbed.length === 1 ? "" : "s"}.`);
  }

  /** The bot was kicked or banned from a room: the links its moderators made end (the room can no longer be bridged). */
  async botRemoved(roomId: string, by: string): Promise<void> {
    for (const link of this.d.links.linksOf(roomId)) {
      const pool = this.d.pools.get(link.networkId);
      if (link.origin === "plumbed" && pool) await this.d.unlinker.unlink(roomId, pool, link.channel, link.channelName, `because ${by} removed the bridge bot`, false);
    }
  }

  listLinks(roomId: string): LinkInfo[] {
    return this.d.links.linksOf(roomId).map((l) => ({ networkId: l.networkId, channel: l.channelName, roomId: l.roomId, origin: l.origin }));
  }

  limits(): { count: number; limit: number | null } {
    const per = this.d.config.provisioning.maxRoomsPerNetwork;
    return { count: this.d.links.allRooms().length, limit: per === null ? null : per * this.d.pools.size };
  }

  private checkLimit(pool: NetworkPool, roomId: string): void {
    const max = this.d.config.provisioning.maxRoomsPerNetwork;
    if (max === null) return;
    const rooms = new Set(this.d.links.channelsOfNetwork(pool.networkId).flatMap(({ name }) => this.d.links.roomsOf(pool.networkId, pool.bot.casefold(name))));
    if (rooms.size >= max && !rooms.has(roomId)) throw new ProvisioningError("IRC_BRIDGE_AT_LIMIT", `the bridge links no more than ${max} rooms to ${pool.config.name}`, 500);
  }

  private async checkModerator(roomId: string, userId: string, toDo: string): Promise<void> {
    if (this.d.permissions.isAdmin(userId)) return;
    const status = await this.d.room.moderatorStatus(roomId, userId).catch(() => "unreadable" as const);
    if (status === "ok") return;
    const why =
      status === "not_joined" ? `${userId} is not in this room` : status === "unreadable" ? "the bridge bot cannot read this room's power levels" : `${userId} needs the power to change this room's power levels to ${toDo}`;
    throw new ProvisioningError("IRC_NOT_ENOUGH_POWER", why, 403);
  }

  private pool(networkId: string): NetworkPool {
    const pool = this.d.pools.get(networkId);
    if (!pool) throw new ProvisioningError("IRC_UNKNOWN_NETWORK", `there is no network ${JSON.stringify(networkId)} (networks: ${[...this.d.pools.keys()].join(", ")})`, 404);
    return pool;
  }

  /** The channel as typed, checked: a valid name, allowed by the network's portals.allow/deny (for links, not unlinks). */
  private channelName(pool: NetworkPool, channel: string, checkAllowed = true): string {
    const { name, portals } = pool.config;
    if (!CHANNEL_NAME.test(channel) || !isChannelName(channel, pool.bot.chanTypes)) {
      throw new ProvisioningError("IRC_UNKNOWN_CHANNEL", `${JSON.stringify(channel)} is not a valid channel name on ${name}`, 400);
    }
    if (checkAllowed && !channelAllowed(channel, portals.allow, portals.deny, pool.bot.caseMapping)) {
      throw new ProvisioningError("IRC_UNKNOWN_CHANNEL", `${channel} on ${name} is not open to the bridge`, 400);
    }
    return channel;
  }

  private async opsOf(pool: NetworkPool, channelName: string): Promise<string[]> {
    try {
      return await this.ops.opsOf(pool, channelName);
    } catch (err) {
      throw new ProvisioningError("M_UNKNOWN", `the bridge could not ask ${pool.config.name} who the operators of ${channelName} are: ${(err as Error).message}`, 502);
    }
  }

  private async sayToOp(pool: NetworkPool, nick: string, text: string): Promise<void> {
    await pool.bot.send("privmsg", nick, plainForIrc(text, OP_MESSAGE_MAX)).catch((err: Error) => log.info("Could not send an operator a private message", { network: pool.networkId, nick, error: err.message }));
  }
}
