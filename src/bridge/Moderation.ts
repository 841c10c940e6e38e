/**
 * Kicks both ways, and IRC invites. A Matrix user's puppet kicked on IRC is kicked from the
 * channel's rooms by the bridge bot, with the kicker and reason. A Matrix user kicking or
 * banning an IRC user's ghost kicks that nick on IRC over the kicker's own connection, so
 * IRC's channel operators keep the authority: a kicker who is not one is told so. An IRC
 * INVITE of a Matrix user's nick invites them to the channel's rooms (opening a portal room
 * if there is none).
 */
import type { Intent } from "matrix-appservice-bridge";
import type { BridgeConfig } from "../config/schema.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import type { Ghosts } from "../matrix/Ghosts.js";
import type { MembershipSync } from "./MembershipSync.js";
import type { Portals } from "./Portals.js";
import type { RoomLinks } from "./RoomLinks.js";

const log = getLogger("bridge/moderation");

export interface ModerationSides {
  bot(): Intent;
  notice(roomId: string, text: string): Promise<void>;
  /** Tells a Matrix user something outside any particular room. */
  notifyUser(userId: string, text: string): void;
}

export class Moderation {
  constructor(
    private readonly config: BridgeConfig,
    private readonly links: RoomLinks,
    private readonly pools: Map<string, NetworkPool>,
    private readonly ghosts: Ghosts,
    private readonly membership: MembershipSync,
    private readonly portals: Portals,
    private readonly matrix: ModerationSides,
  ) {}

  attach(pool: NetworkPool): void {
    pool.on("puppetKicked", (userId, { channel, by, reason }) => {
      for (const roomId of this.links.roomsOf(pool.networkId, pool.bot.casefold(channel))) {
        this.matrix
          .bot()
          .kick(roomId, userId, `Kicked from ${channel} on IRC by ${by}${reason ? `: ${reason}` : ""}`)
          .catch((err: Error) => {
            log.warn("Could not mirror an IRC kick in Matrix", { roomId, userId, error: err.message });
            void this.matrix.notice(roomId, `${userId} was kicked from ${channel} on IRC by ${by}, but the bridge may not remove them here: ${err.message}`).catch(() => undefined);
          });
      }
    });
    pool.on("puppetInvited", (userId, invite) => void this.onInvited(pool, userId, invite.channel, invite.by));
  }

  private async onInvited(pool: NetworkPool, userId: string, channel: string, by: string): Promise<void> {
    let rooms = this.links.roomsOf(pool.networkId, pool.bot.casefold(channel));
    try {
      if (rooms.length === 0) rooms = [await this.portals.open(pool.networkId, channel, null, null, { userId, nick: by })];
      await Promise.all(rooms.map((roomId) => this.matrix.bot().invite(roomId, userId)));
      log.info("Invited a Matrix user after an IRC invite", { network: pool.networkId, channel, userId, by });
    } catch (err) {
      this.matrix.notifyUser(userId, `${by} invited you to ${channel} on ${pool.config.name}, but the bridge could not invite you to its room: ${(err as Error).message}`);
    }
  }

  /** A Matrix user kicked (or banned) an IRC user's ghost from a linked room. */
  async onGhostRemoved(roomId: string, kicker: string, ghostUserId: string, reason: string | undefined): Promise<void> {
    const ghost = this.ghosts.parse(ghostUserId);
    if (!ghost) return;
    this.membership.forgetGhost(roomId, ghostUserId);
    for (const ref of this.links.channelsOf(roomId)) {
      if (ref.networkId !== ghost.networkId) continue;
      const pool = this.pools.get(ref.networkId);
      const network = this.config.networks[ref.networkId];
      if (!pool || !network) continue;
      const nick = pool.roster.nickIn(ref.channelName, ghost.nick);
      try {
        await pool.kick(kicker, ref.channelName, this.links.keyOf(ref.networkId, ref.channel), nick, reason || "Kicked in Matrix");
      } catch (err) {
        log.info("A kick from Matrix was not done on IRC", { roomId, kicker, nick, error: (err as Error).message });
        await this.matrix
          .notice(roomId, `${kicker}: ${nick} is still in ${ref.channelName} on ${network.name}: ${(err as Error).message}`)
          .catch(() => undefined);
      }
    }
  }
}
