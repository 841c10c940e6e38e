/**
 * Who is a channel operator now, as the bridge bot sees it: its own roster when it is in the
 * channel (kept current by NAMES and every MODE), else a WHO asked of the server without
 * joining (no join/part noise in the channel). "Operator" is `+o` or any prefix above it in
 * the server's PREFIX (e.g. `+q`, `+a`); nicks compare with the network's case mapping.
 */
import type { NetworkPool } from "../irc/NetworkPool.js";

/** Whether prefix modes (e.g. "av") include `o` or one ranked above it in `offered` (e.g. "qaohv"). */
export function holdsOp(modes: string, offered: string): boolean {
  const rank = offered.indexOf("o");
  if (rank < 0) return modes.includes("o");
  return [...modes].some((m) => {
    const at = offered.indexOf(m);
    return at >= 0 && at <= rank;
  });
}

export class ChannelOps {
  /** The channel's members with their prefix modes, from the roster or a WHO. */
  private async members(pool: NetworkPool, channel: string): Promise<{ nick: string; modes: string }[]> {
    if (pool.bot.isJoined(channel) && pool.roster.knows(channel)) {
      const withModes = pool.roster.withPrefixes(channel);
      return pool.roster.membersOf(channel).map((nick) => ({ nick, modes: withModes.get(nick) ?? "" }));
    }
    await pool.bot.whenConnected(pool.config.connectTimeoutMs);
    return pool.bot.commands.who(channel);
  }

  /** The nicks holding `+o` or higher in the channel now (the bot and the bridge's puppets left out). */
  async opsOf(pool: NetworkPool, channel: string): Promise<string[]> {
    const offered = pool.bot.prefixModes;
    return (await this.members(pool, channel)).filter((m) => holdsOp(m.modes, offered) && !pool.bot.isSelf(m.nick) && !pool.isOwnNick(m.nick)).map((m) => m.nick);
  }

  /** The nick as the channel writes it when it is an operator there now, else null. */
  async opNamed(pool: NetworkPool, channel: string, nick: string): Promise<string | null> {
    const folded = pool.bot.casefold(nick);
    return (await this.opsOf(pool, channel)).find((n) => pool.bot.casefold(n) === folded) ?? null;
  }
}
