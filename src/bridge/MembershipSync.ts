/**
 * IRC membership in Matrix. Changes seen by the bot's connection (JOIN, PART, KICK, QUIT,
 * NICK) move ghosts in the linked rooms through MembershipLanes: apart from the rooms'
 * message queues (churn never delays a line), coalesced per ghost (a nick that joins and
 * parts within `membership.coalesceMs` costs Matrix nothing) and paced per network by
 * `membership.ghostJoinsPerSecond`. When the bot joins a channel, its member list is synced
 * into the rooms (missing ghosts join, ghosts no longer there leave) the same way. Quits that
 * look like a netsplit leave the ghost in place for a while; a user who comes back in time
 * causes no leave/join churn.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { BridgeConfig, NetworkConfig } from "../config/schema.js";
import { templateRegex } from "../format/template.js";
import type { MembershipChange as IrcMembershipChange } from "../irc/ChannelRoster.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import type { Ghosts } from "../matrix/Ghosts.js";
import { withRetry } from "../matrix/retry.js";
import { metrics } from "../metrics/metrics.js";
import { DropLog } from "./DropLog.js";
import { GIVE_UP_AFTER_MS } from "./IrcToMatrix.js";
import { MembershipLanes, type MembershipChange, type Outcome } from "./MembershipLanes.js";
import type { RoomLinks } from "./RoomLinks.js";

const log = getLogger("bridge/membership");
const NETSPLIT_QUIT = /^[\w.-]+\.[\w-]+ [\w.-]+\.[\w-]+$/;
/** Pending changes per room (one per ghost at most); beyond it joins of absent ghosts are dropped. */
export const MAX_PENDING_PER_ROOM = 10_000;

export class MembershipSync {
  private readonly lanes: MembershipLanes;
  private readonly pools = new Map<string, NetworkPool>();
  /** Leaves held back after a netsplit quit, by room and ghost. */
  private readonly heldLeaves = new Map<string, NodeJS.Timeout>();
  private readonly ghostPatterns = new Map<string, RegExp>();
  /** When each network's next paced change may go out. */
  private readonly nextChangeAt = new Map<string, number>();
  private readonly dropLog = new DropLog(
    (message, meta) => log.warn(message, meta),
    "Membership queue of a room is full: ghost joins are dropped (they join when they speak, or at the next sync)",
  );

  constructor(
    private readonly config: BridgeConfig,
    private readonly links: RoomLinks,
    private readonly ghosts: Ghosts,
    private readonly joinedMembers: (roomId: string) => Promise<string[]>,
    maxPendingPerRoom = MAX_PENDING_PER_ROOM,
  ) {
    for (const [id, network] of Object.entries(config.networks)) {
      this.ghostPatterns.set(id, new RegExp(`^${templateRegex("@", network.ghostUserTemplate, config.homeserver.domain)}$`));
    }
    this.lanes = new MembershipLanes(
      { windowMs: (networkId) => config.networks[networkId]?.membership.coalesceMs ?? 0, maxPendingPerRoom },
      {
        apply: (roomId, change) => this.apply(roomId, change),
        pace: (change) => this.pace(change.networkId),
        onOutcome: (outcome, roomId, change) => this.counted(outcome, roomId, change),
        onPendingChange: (pending) => metrics.membershipPending.set(pending),
      },
    );
  }

  attach(pool: NetworkPool): void {
    this.pools.set(pool.networkId, pool);
    pool.on("membership", (change) => this.onChange(pool, change));
    pool.on("names", (channel, nicks) => {
      if (this.config.networks[pool.networkId].membership.syncOnJoin) void this.syncChannel(pool, channel, nicks);
    });
  }

  /** A room was just linked to a channel the bot is in: its members come in. */
  syncLinked(pool: NetworkPool, channelName: string): void {
    if (this.config.networks[pool.networkId].membership.syncOnJoin) void this.syncChannel(pool, channelName, pool.roster.membersOf(channelName));
  }

  /** A ghost was removed from a room by someone in Matrix; IRC's own leave needs no mirroring then. */
  forgetGhost(roomId: string, userId: string): void {
    this.lanes.forget(roomId, userId);
  }

  /** A ghost is in a room (it spoke there, or the bridge put it there). */
  noteGhost(roomId: string, userId: string): void {
    this.lanes.notePresent(roomId, userId);
  }

  /** A line by this ghost is queued for the room: its leave waits until the returned release is called. */
  holdFor(roomId: string, userId: string): () => void {
    return this.lanes.holdFor(roomId, userId);
  }

  /** Resolves once no membership change is pending (bounded by the caller). */
  idle(): Promise<void> {
    return this.lanes.idle();
  }

  stop(): void {
    this.lanes.stop();
    for (const timer of this.heldLeaves.values()) clearTimeout(timer);
    this.heldLeaves.clear();
  }

  private onChange(pool: NetworkPool, change: IrcMembershipChange): void {
    const network = this.config.networks[pool.networkId];
    for (const roomId of this.links.roomsOf(pool.networkId, pool.bot.casefold(change.channel))) {
      if (change.type === "join") this.join(pool, network, roomId, change.nick);
      else if (change.type === "rename") {
        this.leave(pool, network, roomId, change.oldNick, `changed nick to ${change.newNick}`);
        this.join(pool, network, roomId, change.newNick);
      } else if (NETSPLIT_QUIT.test(change.reason) && network.membership.netsplitTimeoutMs > 0) {
        this.holdLeave(pool, network, roomId, change.nick, change.reason);
      } else this.leave(pool, network, roomId, change.nick, change.reason);
    }
  }

  private join(pool: NetworkPool, network: NetworkConfig, roomId: string, nick: string, immediate = false): void {
    if (pool.isOwnNick(nick)) return;
    const userId = this.ghosts.userIdFor(network, nick, pool.bot.caseMapping);
    const held = this.heldLeaves.get(`${roomId}\u0000${userId}`);
    if (held) {
      // Back from a netsplit: the ghost never left.
      clearTimeout(held);
      this.heldLeaves.delete(`${roomId}\u0000${userId}`);
      return;
    }
    this.lanes.set(roomId, { networkId: pool.networkId, userId, want: "join", nick, reason: "" }, immediate);
  }

  private leave(pool: NetworkPool, network: NetworkConfig, roomId: string, nick: string, reason: string): void {
    const userId = this.ghosts.userIdFor(network, nick, pool.bot.caseMapping);
    this.lanes.set(roomId, { networkId: pool.networkId, userId, want: "leave", nick, reason });
  }

  private holdLeave(pool: NetworkPool, network: NetworkConfig, roomId: string, nick: string, reason: string): void {
    const key = `${roomId}\u0000${this.ghosts.userIdFor(network, nick, pool.bot.caseMapping)}`;
    if (this.heldLeaves.has(key)) return;
    const timer = setTimeout(() => {
      this.heldLeaves.delete(key);
      this.leave(pool, network, roomId, nick, reason);
    }, network.membership.netsplitTimeoutMs);
    timer.unref();
    this.heldLeaves.set(key, timer);
  }

  /** Joins or leaves one ghost in Matrix (the lane decided it is due and not a no-op). */
  private async apply(roomId: string, change: MembershipChange): Promise<void> {
    // A join still pending when the room was unlinked from the network's channels (provisioning): dropped.
    if (change.want === "join" && !this.links.channelsOf(roomId).some((ref) => ref.networkId === change.networkId)) return;
    const pool = this.pools.get(change.networkId);
    const network = this.config.networks[change.networkId];
    try {
      const intent =
        change.nick === null || !pool
          ? this.ghosts.intentForUserId(change.userId)
          : await this.ghosts.intentFor(change.networkId, network, change.nick, pool.bot.caseMapping);
      if (change.want === "join") await withRetry(() => intent.join(roomId), { giveUpAfterMs: GIVE_UP_AFTER_MS });
      else await withRetry(() => intent.leave(roomId, change.reason), { giveUpAfterMs: GIVE_UP_AFTER_MS });
    } catch (err) {
      log.warn("Membership change not mirrored in Matrix", { roomId, userId: change.userId, want: change.want, error: (err as Error).message });
      throw err;
    }
  }

  private counted(outcome: Outcome, roomId: string, change: MembershipChange): void {
    metrics.membershipChanges.inc({ result: outcome });
    if (outcome === "dropped") this.dropLog.dropped(roomId, { roomId, pending: this.lanes.pendingIn(roomId), example: change.userId });
  }

  /** Brings a channel's members into its rooms, and takes out ghosts that are no longer there. */
  private async syncChannel(pool: NetworkPool, channel: string, nicks: string[]): Promise<void> {
    const network = this.config.networks[pool.networkId];
    const pattern = this.ghostPatterns.get(pool.networkId)!;
    const wanted = new Map(
      nicks.filter((n) => !pool.isOwnNick(n)).map((n) => [this.ghosts.userIdFor(network, n, pool.bot.caseMapping), n] as const),
    );
    for (const roomId of this.links.roomsOf(pool.networkId, pool.bot.casefold(channel))) {
      let present: string[];
      try {
        present = (await this.joinedMembers(roomId)).filter((id) => pattern.test(id));
      } catch (err) {
        log.warn("Could not list a room's members; skipping its sync", { roomId, error: (err as Error).message });
        continue;
      }
      for (const userId of present) this.noteGhost(roomId, userId);
      const presentSet = new Set(present);
      const joins = [...wanted].filter(([userId]) => !presentSet.has(userId));
      const leaves = present.filter((userId) => !wanted.has(userId));
      log.info("Syncing channel members into a room", { network: pool.networkId, channel, roomId, joins: joins.length, leaves: leaves.length });
      // Due at once (a member list is state, not churn); the lane paces them.
      for (const [, nick] of joins) this.join(pool, network, roomId, nick, true);
      for (const userId of leaves) this.lanes.set(roomId, { networkId: pool.networkId, userId, want: "leave", nick: null, reason: "Not on IRC any more" }, true);
    }
  }

  /** Spaces a network's membership changes `1 / ghostJoinsPerSecond` apart; messages are not paced here. */
  private async pace(networkId: string): Promise<void> {
    const perSecond = this.config.networks[networkId]?.membership.ghostJoinsPerSecond ?? 10;
    const now = Date.now();
    const at = Math.max(now, this.nextChangeAt.get(networkId) ?? 0);
    this.nextChangeAt.set(networkId, at + 1000 / perSecond);
    if (at > now) await sleep(at - now);
  }
}
