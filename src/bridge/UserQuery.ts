/**
 * Answers the homeserver's "does this user exist?" for ghost user IDs. Synapse asks whenever
 * an event from any server names an unknown user in the bridge's namespace (an invite, a
 * ban), so a stranger can make it ask for any string. A ghost is registered only for a nick
 * that is on IRC now: a ghost the bridge already knows, a nick in a bridged channel's roster,
 * or one found by WHOIS through the bot. The WHOIS lookups are the part strangers drive, so
 * they are deduplicated, paced, bounded in number waiting, and misses are remembered a while.
 */
import PQueue from "p-queue";
import type { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import type { Ghosts } from "../matrix/Ghosts.js";
import { metrics } from "../metrics/metrics.js";
import type { DataStore } from "../store/DataStore.js";
import type { RoomLinks } from "./RoomLinks.js";

const log = getLogger("bridge/user-query");

const WHOIS_PER_SECOND = 2;
/** Beyond this many lookups waiting, the answer is "no" at once. */
const MAX_WAITING = 20;
/** A nick not found is not looked up again for this long... */
const MISS_TTL_MS = 60_000;
/** ...and at most this many misses are remembered. */
const MAX_MISSES = 10_000;

export class UserQuery {
  private readonly lookups = new PQueue({ concurrency: 1, intervalCap: WHOIS_PER_SECOND, interval: 1000 });
  private readonly inFlight = new Map<string, Promise<string | null>>();
  private readonly misses = new Map<string, number>();

  constructor(
    private readonly ghosts: Ghosts,
    private readonly pools: Map<string, NetworkPool>,
    private readonly store: DataStore,
    private readonly links: RoomLinks,
  ) {}

  /** True once the ghost exists (registered now if its nick is on IRC); false when it is not on IRC. */
  async exists(userId: string): Promise<boolean> {
    const ghost = this.ghosts.parse(userId);
    const pool = ghost && this.pools.get(ghost.networkId);
    if (!ghost || !pool) return false;
    const nick = await this.onIrc(userId, ghost.networkId, pool, ghost.nick);
    if (!nick) return false;
    await this.ghosts.intentFor(ghost.networkId, pool.config, nick, pool.bot.caseMapping, true);
    return true;
  }

  /** The nick as IRC writes it when it is on IRC, else null. */
  private async onIrc(userId: string, networkId: string, pool: NetworkPool, nick: string): Promise<string | null> {
    const known = await this.store.getGhost(userId);
    if (known) return this.answer("known", known.nick);
    const folded = pool.bot.casefold(nick);
    for (const { name } of this.links.channelsOfNetwork(networkId)) {
      const member = pool.roster.membersOf(name).find((m) => pool.bot.casefold(m) === folded);
      if (member) return this.answer("roster", member);
    }
    return this.whois(`${networkId}\u0000${folded}`, pool, nick);
  }

  private whois(key: string, pool: NetworkPool, nick: string): Promise<string | null> {
    const missed = this.misses.get(key);
    if (missed !== undefined && missed > Date.now()) return Promise.resolve(this.answer("absent", null));
    const running = this.inFlight.get(key);
    if (running) return running;
    if (this.lookups.size + this.lookups.pending >= MAX_WAITING) {
      log.warn("Too many user queries waiting for WHOIS; answering not found", { nick });
      return Promise.resolve(this.answer("busy", null));
    }
    const lookup = this.lookups
      .add(async () => {
        await pool.bot.whenConnected(pool.config.connectTimeoutMs);
        const found = (await pool.bot.commands.whois(nick))?.nick ?? null;
        if (!found) this.rememberMiss(key);
        return this.answer(found ? "whois" : "absent", found);
      })
      .catch((err: Error) => {
        log.warn("WHOIS for a user query failed; answering not found", { nick, error: err.message });
        return this.answer("busy", null);
      })
      .finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, lookup as Promise<string | null>);
    return lookup as Promise<string | null>;
  }

  private rememberMiss(key: string): void {
    this.misses.delete(key);
    this.misses.set(key, Date.now() + MISS_TTL_MS);
    for (const oldest of this.misses.keys()) {
      if (this.misses.size <= MAX_MISSES) break;
      this.misses.delete(oldest);
    }
  }

  private answer<T extends string | null>(how: "known" | "roster" | "whois" | "absent" | "busy", nick: T): T {
    metrics.ghostUserQueries.inc({ answer: how });
    return nick;
  }
}
