/**
 * Portal rooms: a room the bridge creates for an IRC channel on demand. Joining the alias
 * `#<aliasTemplate>:<domain>` makes the homeserver ask the bridge about it; the bridge bot
 * joins the channel (so it holds the channel and hears it), reads its topic and modes, and
 * creates the room with that alias. An IRC INVITE and `!join` open portals too.
 *
 * New rooms are rate-limited per requester (the Matrix user, the inviting IRC nick; alias
 * queries, where the homeserver does not say who asked, share one larger bucket per network).
 */
import type { Intent } from "matrix-appservice-bridge";
import type { BridgeConfig, NetworkConfig } from "../config/schema.js";
import { CHANNEL_NAME } from "../config/schema.js";
import { isChannelName, stripIrcFormatting } from "../format/ircText.js";
import { channelAllowed } from "../format/patterns.js";
import { portalAlias, readTemplate } from "../format/template.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import { metrics } from "../metrics/metrics.js";
import { RateLimiter } from "./RateLimiter.js";
import type { RoomLinks } from "./RoomLinks.js";

const log = getLogger("bridge/portals");

/** Why a portal cannot be opened, in words fit for the user who asked. */
export class PortalRefused extends Error {}

/** Who asked for a portal: null for an alias query (the homeserver does not say who). */
export interface PortalRequester {
  userId?: string;
  /** An IRC nick (e.g. the one who sent an INVITE). */
  nick?: string;
}

/** Opening portals on behalf of one requester (what the admin commands get). */
export interface PortalOpener {
  open(networkId: string, channelName: string, alias?: string | null, key?: string | null): Promise<string>;
}

/** Alias queries share one bucket per network, this many times a requester's. */
const ALIAS_QUERY_SHARE = 10;

/** Room power levels the homeserver would use (the bot, as creator, is admin), but for the topic. */
function portalPowerLevels() {
  return {
    // Topic authority lives on IRC: anyone may try, the bridge sets it back if IRC says no,
    // and IRC users' ghosts can set it themselves, so the setter is shown.
    events: {
      "m.room.topic": 0,
      "m.room.name": 50,
      "m.room.avatar": 50,
      "m.room.canonical_alias": 50,
      "m.room.power_levels": 100,
      "m.room.history_visibility": 100,
      "m.room.tombstone": 100,
      "m.room.server_acl": 100,
      "m.room.encryption": 100,
    },
  };
}

export class Portals {
  private readonly opening = new Map<string, Promise<string>>();
  private readonly limiters = new Map<string, RateLimiter>();

  constructor(
    private readonly config: BridgeConfig,
    private readonly links: RoomLinks,
    private readonly pools: Map<string, NetworkPool>,
    private readonly bot: () => Intent,
    /** Called once a new portal is linked (the channel's members are then synced in). */
    private readonly onOpened: (pool: NetworkPool, channelName: string) => void,
  ) {}

  /** The homeserver asks whether an alias exists: true once its portal room exists. */
  async onAliasQuery(alias: string): Promise<boolean> {
    for (const [networkId, network] of Object.entries(this.config.networks)) {
      const channelName = readTemplate("#", network.aliasTemplate, "CHANNEL", this.config.homeserver.domain, alias);
      if (channelName === null) continue;
      try {
        await this.open(networkId, channelName, alias);
        return true;
      } catch (err) {
        log.warn("No portal room for an alias", { alias, network: networkId, channel: channelName, reason: (err as Error).message });
        return false;
      }
    }
    return false;
  }

  /**
   * The portal room of a channel, created (with the bot in the channel) if there is none.
   * Rejects with PortalRefused when the channel cannot have one, with the reason.
   */
  open(networkId: string, channelName: string, alias: string | null = null, key: string | null = null, requester: PortalRequester | null = null): Promise<string> {
    const pool = this.pools.get(networkId);
    if (!pool) return Promise.reject(new PortalRefused(`there is no network ${networkId}`));
    const id = `${networkId}\u0000${pool.bot.casefold(channelName)}`;
    let opening = this.opening.get(id);
    if (!opening) {
      opening = this.create(pool, channelName, alias, key, requester).finally(() => this.opening.delete(id));
      this.opening.set(id, opening);
    }
    return opening;
  }

  /** The same, on behalf of one requester. */
  openerFor(requester: PortalRequester): PortalOpener {
    return { open: (networkId, channelName, alias = null, key = null) => this.open(networkId, channelName, alias, key, requester) };
  }

  /** Spends a new room from the requester's buckets, or refuses with how long to wait. */
  private charge(pool: NetworkPool, channelName: string, requester: PortalRequester | null): void {
    const { networkId } = pool;
    const keys = requester ? [requester.userId && `user\u0000${requester.userId}`, requester.nick && `nick\u0000${pool.bot.casefold(requester.nick)}`].filter((k): k is string => Boolean(k)) : [];
    const anonymous = keys.length === 0;
    const limiterId = `${networkId}\u0000${anonymous ? "alias" : "requester"}`;
    let limiter = this.limiters.get(limiterId);
    if (!limiter) {
      const { burst, perMinute } = pool.config.portals.rateLimit;
      limiter = new RateLimiter(anonymous ? { burst: burst * ALIAS_QUERY_SHARE, perMinute: perMinute * ALIAS_QUERY_SHARE } : { burst, perMinute });
      this.limiters.set(limiterId, limiter);
    }
    if (anonymous) keys.push("alias");
    if (limiter.take(...keys)) return;
    metrics.rateLimited.inc({ kind: "portal", network: networkId });
    const seconds = Math.max(1, Math.ceil(limiter.retryAfterMs(...keys) / 1000));
    log.warn("Portal creation refused: rate limit", { network: networkId, channel: channelName, requester: requester ?? "alias query", retryAfterSeconds: seconds });
    throw new PortalRefused(`too many new rooms were asked for too fast; try again in ${seconds} s`);
  }

  private check(pool: NetworkPool, channelName: string): void {
    const { portals, name } = pool.config;
    if (!portals.enabled) throw new PortalRefused(`the bridge does not open rooms for channels of ${name} on request`);
    if (!CHANNEL_NAME.test(channelName) || !isChannelName(channelName, pool.bot.chanTypes)) {
      throw new PortalRefused(`${JSON.stringify(channelName)} is not a valid channel name on ${name} (channels start with one of ${pool.bot.chanTypes} and hold no spaces or commas)`);
    }
    if (!channelAllowed(channelName, portals.allow, portals.deny, pool.bot.caseMapping)) {
      throw new PortalRefused(`${channelName} on ${name} is not open to the bridge`);
    }
  }

  private async create(pool: NetworkPool, channelName: string, alias: string | null, key: string | null, requester: PortalRequester | null): Promise<string> {
    this.check(pool, channelName);
    const folded = pool.bot.casefold(channelName);
    const existing = this.links.portalRoomOf(pool.networkId, folded);
    if (existing) {
      if (alias) await this.bot().createAlias(alias, existing);
      return existing;
    }
    this.charge(pool, channelName, requester);
    const network = pool.config;
    await pool.bot.whenConnected(network.connectTimeoutMs);
    try {
      await pool.bot.join(channelName, key);
    } catch (err) {
      throw new PortalRefused(`the bridge could not join ${channelName} on ${network.name}: ${(err as Error).message}`);
    }
    const info = await pool.bot.commands.channelInfo(channelName).catch((err: Error) => {
      log.warn("Could not read a channel's topic and modes", { network: pool.networkId, channel: channelName, error: err.message });
      return { topic: "", modes: "" };
    });
    const roomId = await this.createRoom(network, pool.networkId, channelName, alias, info);
    await this.links.add({ roomId, networkId: pool.networkId, channel: folded, channelName, origin: "portal" });
    if (key) await this.links.setKey(pool.networkId, folded, key);
    metrics.portalsOpened.inc({ network: pool.networkId });
    log.info("Opened a portal room", { network: pool.networkId, channel: channelName, roomId, alias });
    this.onOpened(pool, channelName);
    return roomId;
  }

  private async createRoom(network: NetworkConfig, networkId: string, channelName: string, alias: string | null, info: { topic: string; modes: string }): Promise<string> {
    const modes = info.modes.replace(/^\+/, "");
    const inviteOnly = network.portals.joinRule === "invite" || /[ik]/.test(modes);
    const secret = /[sp]/.test(modes);
    const bot = this.bot();
    const aliasLocalpart = (alias ?? portalAlias(network.aliasTemplate, channelName, this.config.homeserver.domain)).slice(1).replace(/:[^:]*$/, "");
    const { room_id: roomId } = await bot.createRoom({
      createAsClient: true,
      options: {
        name: channelName,
        topic: stripIrcFormatting(info.topic),
        room_alias_name: aliasLocalpart,
        preset: inviteOnly ? "private_chat" : "public_chat",
        visibility: network.portals.publish && !secret && !inviteOnly ? "public" : "private",
        creation_content: { "m.federate": network.portals.federate },
        ...(network.portals.roomVersion ? { room_version: network.portals.roomVersion } : {}),
        power_level_content_override: portalPowerLevels(),
        initial_state: [
          {
            // MSC2346: clients show which network and channel the room is bridged to.
            type: "m.bridge",
            state_key: `irc/${networkId}/${channelName}`,
            content: {
              bridgebot: bot.userId,
              protocol: { id: "irc", displayname: "IRC" },
              network: { id: networkId, displayname: network.name },
              channel: { id: channelName, displayname: channelName },
            },
          },
        ],
      },
    });
    return roomId;
  }
}
