/**
 * The way back (Matrix → IRC), per network with `chanops.matrixToIrcModes`: a Matrix user who
 * is channel operator on IRC (their puppet holds +o or higher) and changes someone's level in
 * a linked room to a mapped level gives that person the mode on IRC over their own
 * connection (the target is the person's puppet nick or the ghost's IRC nick); lowering takes
 * it away. Someone who is not operator on IRC is told why nothing happened on IRC.
 */
import type { BridgeConfig } from "../config/schema.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import type { MatrixEvent } from "../matrix/DurableAppService.js";
import type { Ghosts } from "../matrix/Ghosts.js";
import { modeForLevel, type PowerLevels } from "./chanopLevels.js";
import type { ChannelRef, RoomLinks } from "./RoomLinks.js";

const log = getLogger("bridge/power-to-modes");
/** Prefix modes that make a puppet a channel operator (who may give modes). */
const OPERATOR_MODES = /[qao]/;

interface ModeChange {
  sign: "+" | "-";
  mode: string;
  nick: string;
}

export class PowerToModes {
  constructor(
    private readonly config: BridgeConfig,
    private readonly links: RoomLinks,
    private readonly pools: Map<string, NetworkPool>,
    private readonly ghosts: Ghosts,
    private readonly notice: (roomId: string, text: string) => Promise<void>,
  ) {}

  /** A Matrix user changed a linked room's power levels. */
  async onPowerLevels(event: MatrixEvent): Promise<void> {
    const roomId = event.room_id as string;
    const sender = event.sender as string;
    const now = (event.content ?? {}) as PowerLevels;
    const before = ((event.unsigned as { prev_content?: PowerLevels } | undefined)?.prev_content ?? {}) as PowerLevels;
    const level = (c: PowerLevels, u: string) => (typeof c.users?.[u] === "number" ? c.users[u] : typeof c.users_default === "number" ? c.users_default : 0);
    const users = new Set([...Object.keys(now.users ?? {}), ...Object.keys(before.users ?? {})]);
    const changed = [...users].filter((u) => u !== sender && level(now, u) !== level(before, u));
    if (changed.length === 0) return;
    for (const ref of this.links.channelsOf(roomId)) {
      const pool = this.pools.get(ref.networkId);
      const network = this.config.networks[ref.networkId];
      if (!pool || !network?.chanops.matrixToIrcModes) continue;
      const modes = this.modeChanges(pool, ref, changed, (u) => level(before, u), (u) => level(now, u));
      if (modes.length) await this.give(pool, ref, roomId, sender, modes);
    }
  }

  private modeChanges(pool: NetworkPool, ref: ChannelRef, userIds: string[], oldLevel: (u: string) => number, newLevel: (u: string) => number): ModeChange[] {
    const offered = pool.bot.prefixModes;
    const map = pool.config.chanops.modePowerMap;
    const out: ModeChange[] = [];
    for (const userId of userIds) {
      const nick = this.nickOf(pool, ref, userId);
      if (!nick) continue;
      const held = pool.roster.prefixesOf(ref.channelName, nick);
      const wanted = modeForLevel(newLevel(userId), offered, map);
      const had = modeForLevel(oldLevel(userId), offered, map);
      if (had && had !== wanted && held.includes(had)) out.push({ sign: "-", mode: had, nick });
      if (wanted && !held.includes(wanted)) out.push({ sign: "+", mode: wanted, nick });
    }
    return out;
  }

  /** The IRC nick in the channel standing for a Matrix user (their puppet) or a ghost, or null. */
  private nickOf(pool: NetworkPool, ref: ChannelRef, userId: string): string | null {
    const ghost = this.ghosts.parse(userId);
    const nick = ghost ? (ghost.networkId === pool.networkId ? ghost.nick : null) : (pool.nickOf(userId) ?? pool.recordOf(userId)?.nick ?? null);
    if (!nick) return null;
    const inChannel = pool.roster.membersOf(ref.channelName).some((m) => pool.bot.casefold(m) === pool.bot.casefold(nick));
    return inChannel ? pool.roster.nickIn(ref.channelName, nick) : null;
  }

  private async give(pool: NetworkPool, ref: ChannelRef, roomId: string, sender: string, changes: ModeChange[]): Promise<void> {
    const what = changes.map((c) => `${c.sign}${c.mode} ${c.nick}`).join(", ");
    const senderNick = pool.nickOf(sender);
    const senderModes = senderNick ? pool.roster.prefixesOf(ref.channelName, senderNick) : "";
    if (!OPERATOR_MODES.test(senderModes)) {
      const why = senderNick ? `your IRC nick ${senderNick} is not a channel operator (+o) of ${ref.channelName}` : `you are not in ${ref.channelName} on IRC`;
      log.info("A power level change was not mirrored on IRC: the sender is not operator", { roomId, sender, changes: what });
      await this.notice(roomId, `${sender}: nothing changed on IRC (${what} in ${ref.channelName} on ${pool.config.name}): ${why}.`).catch(() => undefined);
      return;
    }
    try {
      const connection = await pool.join(sender, ref.channelName, this.links.keyOf(ref.networkId, ref.channel));
      for (const c of changes) await connection.writer.send("MODE", [ref.channelName, `${c.sign}${c.mode}`, c.nick]);
      log.info("Power level change mirrored on IRC", { roomId, sender, channel: ref.channelName, changes: what });
    } catch (err) {
      await this.notice(roomId, `${sender}: ${what} in ${ref.channelName} on ${pool.config.name} failed: ${(err as Error).message}`).catch(() => undefined);
    }
  }
}
