/**
 * IRC membership in Matrix. Changes seen by the bot's connection (JOIN, PART, KICK, QUIT,
 * NICK) move ghosts in the linked rooms, through the same per-room queue as messages so the
 * order matches IRC. When the bot joins a channel, its member list is synced into the rooms
 * (missing ghosts join, ghosts no longer there leave), paced so a large channel does not
 * flood the homeserver. Quits that look like a netsplit leave the ghost in place for a while;
 * a user who comes back in time causes no leave/join churn.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { BridgeConfig, NetworkConfig } from "../config/schema.js";
import { templateRegex } from "../format/template.js";
import type { MembershipChange } from "../irc/ChannelRoster.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import type { Ghosts } from "../matrix/Ghosts.js";
import { withRetry } from "../matrix/retry.js";
import { GIVE_UP_AFTER_MS } from "./IrcToMatrix.js";
import type { KeyedQueue } from "./KeyedQueue.js";
import type { RoomLinks } from "./RoomLinks.js";

const log = getLogger("bridge/membership");
const NETSPLIT_QUIT = /^[\w.-]+\.[\w-]+ [\w.-]+\.[\w-]+$/;

export class MembershipSync {
  /** Ghosts this process has seen in each room (room → user IDs), so only those are taken out. */
  private readonly ghostsInRoom = new Map<string, Set<string>>();
  /** Leaves held back after a netsplit quit, by room and ghost. */
  private readonly heldLeaves = new Map<string, NodeJS.Timeout>();
  private readonly ghostPatterns = new Map<string, RegExp>();
  private nextSyncAt = 0;

  constructor(
    private readonly config: BridgeConfig,
    private readonly links: RoomLinks,
    private readonly ghosts: Ghosts,
    private readonly roomQueue: KeyedQueue,
    private readonly joinedMembers: (roomId: string) => Promise<string[]>,
  ) {
    for (const [id, network] of Object.entries(config.networks)) {
      this.ghostPatterns.set(id, new RegExp(`^${templateRegex("@", network.ghostUserTemplate, config.homeserver.domain)}$`));
    }
  }

  attach(pool: NetworkPool): void {
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
    this.ghostsInRoom.get(roomId)?.delete(userId);
  }

  /** A ghost is in a room (it spoke there, or the bridge put it there). */
  noteGhost(roomId: string, userId: string): void {
    this.tracked(roomId).add(userId);
  }

  private tracked(roomId: string): Set<string> {
    let set = this.ghostsInRoom.get(roomId);
    if (!set) this.ghostsInRoom.set(roomId, (set = new Set()));
    return set;
  }

  private onChange(pool: NetworkPool, change: MembershipChange): void {
    const network = this.config.networks[pool.networkId];
    for (const roomId of this.links.roomsOf(pool.networkId, pool.bot.casefold(change.channel))) {
      if (change.type === "join") this.queue(roomId, this.joinJob(pool, network, roomId, change.nick));
      else if (change.type === "rename") {
        this.queue(roomId, this.leaveJob(pool, network, roomId, change.oldNick, `changed nick to ${change.newNick}`));
        this.queue(roomId, this.joinJob(pool, network, roomId, change.newNick));
      } else if (NETSPLIT_QUIT.test(change.reason) && network.membership.netsplitTimeoutMs > 0) {
        this.holdLeave(pool, network, roomId, change.nick, change.reason);
      } else this.queue(roomId, this.leaveJob(pool, network, roomId, change.nick, change.reason));
    }
  }

  private holdLeave(pool: NetworkPool, network: NetworkConfig, roomId: string, nick: string, reason: string): void {
    const key = `${roomId}\u0000${this.ghosts.userIdFor(network, nick, pool.bot.caseMapping)}`;
    if (this.heldLeaves.has(key)) return;
    const timer = setTimeout(() => {
      this.heldLeaves.delete(key);
      this.queue(roomId, this.leaveJob(pool, network, roomId, nick, reason));
    }, network.membership.netsplitTimeoutMs);
    timer.unref();
    this.heldLeaves.set(key, timer);
  }

  private queue(roomId: string, job: () => Promise<void>): void {
    this.roomQueue.push(roomId, job).catch((err: Error) => log.warn("Membership change not mirrored in Matrix", { roomId, error: err.message }));
  }

  private joinJob(pool: NetworkPool, network: NetworkConfig, roomId: string, nick: string) {
    return async () => {
      if (pool.isOwnNick(nick)) return;
      const userId = this.ghosts.userIdFor(network, nick, pool.bot.caseMapping);
      const held = this.heldLeaves.get(`${roomId}\u0000${userId}`);
      if (held) {
        // Back from a netsplit: the ghost never left.
        clearTimeout(held);
        this.heldLeaves.delete(`${roomId}\u0000${userId}`);
        return;
      }
      const intent = await this.ghosts.intentFor(pool.networkId, network, nick, pool.bot.caseMapping);
      await withRetry(() => intent.join(roomId), { giveUpAfterMs: GIVE_UP_AFTER_MS });
      this.noteGhost(roomId, userId);
    };
  }

  private leaveJob(pool: NetworkPool, network: NetworkConfig, roomId: string, nick: string, reason: string) {
    return async () => {
      const userId = this.ghosts.userIdFor(network, nick, pool.bot.caseMapping);
      if (!this.tracked(roomId).delete(userId)) return; // not a ghost the bridge knows to be there
      const intent = await this.ghosts.intentFor(pool.networkId, network, nick, pool.bot.caseMapping);
      await withRetry(() => intent.leave(roomId, reason), { giveUpAfterMs: GIVE_UP_AFTER_MS });
    };
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
      const joins = [...wanted].filter(([userId]) => !present.includes(userId));
      const leaves = present.filter((userId) => !wanted.has(userId));
      log.info("Syncing channel members into a room", { network: pool.networkId, channel, roomId, joins: joins.length, leaves: leaves.length });
      for (const [, nick] of joins) {
        await this.pace(network);
        this.queue(roomId, this.joinJob(pool, network, roomId, nick));
      }
      for (const userId of leaves) {
        await this.pace(network);
        this.tracked(roomId).delete(userId);
        this.queue(roomId, () => withRetry(() => this.ghosts.intentForUserId(userId).leave(roomId, "Not on IRC any more"), { giveUpAfterMs: GIVE_UP_AFTER_MS }));
      }
    }
  }

  /** Spaces sync changes `1 / ghostJoinsPerSecond` apart; messages interleave freely. */
  private async pace(network: NetworkConfig): Promise<void> {
    const now = Date.now();
    const at = Math.max(now, this.nextSyncAt);
    this.nextSyncAt = at + 1000 / network.membership.ghostJoinsPerSecond;
    if (at > now) await sleep(at - now);
  }
}
