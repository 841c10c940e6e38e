/**
 * Unlinking a room from a channel, whoever asked (a room moderator, a bridge admin, the
 * channel's operator by PM): the link goes; puppets whose only reason to be in the channel was
 * this room part it; the network's ghosts leave the room (but those still wanted there by
 * another of its channels); the bot parts the channel when no room needs it any more; the room
 * is told, and the bot leaves it when it is linked to nothing else.
 */
import type { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import type { Ghosts } from "../matrix/Ghosts.js";
import { metrics } from "../metrics/metrics.js";
import type { RoomLinks } from "../bridge/RoomLinks.js";
import type { RoomSide } from "./RoomSide.js";

const log = getLogger("provisioning/unlink");

export class Unlinker {
  constructor(
    private readonly links: RoomLinks,
    private readonly pools: Map<string, NetworkPool>,
    private readonly ghosts: Ghosts,
    private readonly room: RoomSide,
    private readonly joinedMembers: (roomId: string) => Promise<string[]>,
  ) {}

  /** `why` completes "Unlinked from #chan on Net ..." (e.g. "at the request of @mod:example.org"). */
  async unlink(roomId: string, pool: NetworkPool, channel: string, channelName: string, why: string): Promise<void> {
    const { networkId } = pool;
    await this.links.remove(roomId, networkId, channel);
    metrics.provisioning.inc({ outcome: "unlinked" });
    log.info("Unlinked a room from a channel", { roomId, network: networkId, channel: channelName, why });
    const members = await this.joinedMembers(roomId).catch(() => [] as string[]);

    // Puppets: those not joined to another room still linked to the channel part it.
    const otherRooms = this.links.roomsOf(networkId, channel);
    const stay = new Set<string>();
    for (const other of otherRooms) for (const userId of await this.joinedMembers(other).catch(() => [] as string[])) stay.add(userId);
    for (const userId of pool.usersIn(channelName)) {
      if (!stay.has(userId)) pool.part(userId, channelName, "The Matrix room was unlinked from this channel");
    }
    if (otherRooms.length === 0) pool.bot.part(channelName, "The Matrix room was unlinked from this channel");

    // Ghosts of this network leave, unless another channel of the room still has their nick.
    const stillLinked = this.links.channelsOf(roomId).filter((ref) => ref.networkId === networkId);
    const wanted = new Set(stillLinked.flatMap((ref) => pool.roster.membersOf(ref.channelName).map((n) => pool.bot.casefold(n))));
    for (const userId of members) {
      const ghost = this.ghosts.parse(userId);
      if (!ghost || ghost.networkId !== networkId || wanted.has(pool.bot.casefold(ghost.nick))) continue;
      await this.ghosts
        .intentForUserId(userId)
        .leave(roomId, `${channelName} is no longer bridged here`)
        .catch((err: Error) => log.info("A ghost could not leave an unlinked room", { roomId, userId, error: err.message }));
    }

    await this.room.bridgeInfo(roomId, networkId, null, channelName, "");
    await this.room.notice(roomId, `This room is unlinked from ${channelName} on ${pool.config.name} ${why}.`);
    if (this.links.channelsOf(roomId).length === 0) await this.room.leave(roomId);
  }
}
