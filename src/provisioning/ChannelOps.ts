/**
 * Who is a channel operator now, as the bridge bot sees it: its own roster when it is in the
 * channel (kept current by NAMES and every MODE), else a WHO asked of the server without
 * joining (no join/part noise in the channel). "Operator" is `+o` or any prefix above it in
 * the server's PREFIX (e.g. `+q`, `+a`); nicks compare with the network's case mapping.
 *
 * Anyone may make the bridge ask (the room command, the provisioning API's querylink), so the
 * WHO is the one choke point that bounds it: one WHO per channel is in flight at a time
 * (others share its answer), and each network gets at most `whoLimit` WHOs (beyond: an error,
 * nothing sent). Only replies about the channel asked count: a server may take `WHO #x` as a
 * mask and answer for others. Listings for people (OpsListing) are kept a minute; checks of an
 * operator's answer are not (one de-opped a moment ago must not approve).
 */
import { RateLimiter, type RateLimit } from "../bridge/RateLimiter.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import type { LinkProvisioner } from "./types.js";

type Member = { nick: string; modes: string };
/** What a WHO gives (the channel of each reply, where the server said it). */
type WhoReply = Member & { channel?: string };

export interface ChannelOpsOptions {
  whoLimit: RateLimit;
  now: () => number;
}

// Sustained: one WHO every 3 s per network (each reply lists a whole channel to the bot).
const DEFAULTS: ChannelOpsOptions = { whoLimit: { burst: 20, perMinute: 20 }, now: Date.now };

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
  private readonly options: ChannelOpsOptions;
  private readonly inFlight = new Map<string, Promise<Member[]>>();
  private readonly whoLimiter: RateLimiter;

  constructor(options: Partial<ChannelOpsOptions> = {}) {
    this.options = { ...DEFAULTS, ...options };
    this.whoLimiter = new RateLimiter(this.options.whoLimit, 1_000, this.options.now);
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

  /** The channel's members with their prefix modes, from the roster or a WHO. */
  private async members(pool: NetworkPool, channel: string): Promise<Member[]> {
    if (pool.bot.isJoined(channel) && pool.roster.knows(channel)) {
      const withModes = pool.roster.withPrefixes(channel);
      return pool.roster.membersOf(channel).map((nick) => ({ nick, modes: withModes.get(nick) ?? "" }));
    }
    const folded = pool.bot.casefold(channel);
    const key = `${pool.networkId}\0${folded}`;
    const running = this.inFlight.get(key);
    if (running) return running;
    if (!this.whoLimiter.take(pool.networkId)) {
      throw new Error(`too many channel lookups on ${pool.config.name} just now; try again in ${Math.ceil(this.whoLimiter.retryAfterMs(pool.networkId) / 1000)} s`);
    }
    const asked = this.who(pool, channel, folded).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, asked);
    return asked;
  }

  private async who(pool: NetworkPool, channel: string, folded: string): Promise<Member[]> {
    await pool.bot.whenConnected(pool.config.connectTimeoutMs);
    const replies: WhoReply[] = await pool.bot.commands.who(channel);
    return replies.filter((r) => typeof r.channel === "string" && pool.bot.casefold(r.channel) === folded).map(({ nick, modes }) => ({ nick, modes }));
  }
}

/**
 * A channel's operators as listed to people (`!irc link #chan`, querylink): kept `cacheMs` per
 * (network, channel), one lookup at a time per channel; a failure is not kept. Bounded.
 */
export class OpsListing {
  private readonly cached = new Map<string, { at: number; ops: string[] }>();
  private readonly inFlight = new Map<string, Promise<string[]>>();

  constructor(
    private readonly lookup: (networkId: string, channel: string) => Promise<string[]>,
    private readonly cacheMs = 60_000,
    private readonly maxCached = 1_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The provisioner with its listing cached (for the room command and the HTTP API). */
  static wrap(p: LinkProvisioner): LinkProvisioner {
    const listing = new OpsListing((n, c) => p.channelOps(n, c));
    return {
      networks: () => p.networks(),
      channelOps: (n, c) => listing.channelOps(n, c),
      requestLink: (input) => p.requestLink(input),
      unlink: (input) => p.unlink(input),
      listLinks: (roomId) => p.listLinks(roomId),
      limits: () => p.limits(),
    };
  }

  channelOps(networkId: string, channel: string): Promise<string[]> {
    // Lower case is close enough for a cache key: a miss is only one more (bounded) lookup.
    const key = `${networkId}\0${channel.toLowerCase()}`;
    const hit = this.cached.get(key);
    if (hit && this.now() - hit.at < this.cacheMs) return Promise.resolve(hit.ops);
    const running = this.inFlight.get(key);
    if (running) return running;
    const asked = this.lookup(networkId, channel)
      .then((ops) => (this.remember(key, ops), ops))
      .finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, asked);
    return asked;
  }

  private remember(key: string, ops: string[]): void {
    this.cached.delete(key);
    this.cached.set(key, { at: this.now(), ops });
    for (const [k, v] of this.cached) {
      if (this.cached.size <= this.maxCached && this.now() - v.at < this.cacheMs) break;
      this.cached.delete(k);
    }
  }
}
