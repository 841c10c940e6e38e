/**
 * IRC channel operators → Matrix power levels. The bot's channel roster knows each member's
 * prefix modes (NAMES with multi-prefix, then every MODE); this turns them into power levels
 * for the Matrix users whose puppets hold them and (per network, `ghostPowerLevels`) for IRC
 * users' ghosts, plus `events_default` for moderated (+m) channels (see ChannelModes).
 *
 * Writes are debounced per room: a change starts a window (`powerLevelWindowMs`), and at its
 * end one job on the room's queue reads the room's power levels, merges what IRC wants (only
 * entries the bridge set itself move: chanopLevels.ts) and writes one event, or none when
 * nothing changed. What the bridge set is stored (ChanopState), so it survives restarts.
 */
import type { Intent } from "matrix-appservice-bridge";
import type { BridgeConfig, NetworkConfig } from "../config/schema.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import type { Ghosts } from "../matrix/Ghosts.js";
import { errcodeOf, withRetry } from "../matrix/retry.js";
import { metrics } from "../metrics/metrics.js";
import type { ChanopState, DataStore } from "../store/DataStore.js";
import { EVENTS_DEFAULT, levelForModes, levelOf, mergePowerLevels, shrinkPowerLevels, type PowerLevels } from "./chanopLevels.js";
import { GIVE_UP_AFTER_MS } from "./IrcToMatrix.js";
import type { KeyedQueue } from "./KeyedQueue.js";
import type { ChannelRef, RoomLinks } from "./RoomLinks.js";
import { readStateEvent } from "../matrix/readState.js";

const log = getLogger("bridge/chanops");
const UNREADABLE_RETRIES = 5;
const UNREADABLE_RETRY_MS = 2_000;
/** Level to send m.room.power_levels when the room does not say (the spec's state_default). */
const DEFAULT_STATE_LEVEL = 50;

export interface ChanopSides {
  bot(): Intent;
  botUserId: string;
  notice(roomId: string, text: string): Promise<void>;
  joinedMembers(roomId: string): Promise<string[]>;
  /** Whether a linked channel is moderated (+m) and so wants events_default at the voice level. */
  moderated(ref: ChannelRef): boolean;
  /** Whether the channel's modes are known yet (until then +m is unknown: nothing is written). */
  modesKnown(ref: ChannelRef): boolean;
}

interface RoomMemory {
  owned: Map<string, number>;
  channelModes: Map<string, string>;
}

export class ChanopSync {
  private readonly pools = new Map<string, NetworkPool>();
  private readonly memory = new Map<string, RoomMemory>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Each room's creators (room version 12+: above every level, and never listed in `users`). */
  private readonly creators = new Map<string, Set<string>>();
  /** Rooms whose power levels could not be read, and how many times in a row. */
  private readonly unreadable = new Map<string, number>();
  /** Rooms told that the bot lacks power (once per run each). */
  private readonly toldPowerless = new Set<string>();

  constructor(
    private readonly config: BridgeConfig,
    private readonly links: RoomLinks,
    private readonly ghosts: Ghosts,
    private readonly store: DataStore,
    private readonly roomQueue: KeyedQueue,
    private readonly sides: ChanopSides,
  ) {}

  async load(): Promise<void> {
    for (const s of await this.store.getChanopStates()) {
      this.memory.set(s.roomId, { owned: new Map(s.bridgeLevels), channelModes: new Map(s.channelModes) });
    }
  }

  attach(pool: NetworkPool): void {
    this.pools.set(pool.networkId, pool);
    pool.roster.on("prefixes", (channel) => {
      for (const roomId of this.links.roomsOf(pool.networkId, pool.bot.casefold(channel))) this.schedule(roomId);
    });
  }

  /** A room was just linked to a channel the bot is in (a new portal): its levels are checked. */
  linked(pool: NetworkPool, channelName: string): void {
    for (const roomId of this.links.roomsOf(pool.networkId, pool.bot.casefold(channelName))) this.schedule(roomId);
  }

  /** The room's stored memory (what the bridge set, and the channel modes it applied). */
  memoryOf(roomId: string): RoomMemory {
    let m = this.memory.get(roomId);
    if (!m) this.memory.set(roomId, (m = { owned: new Map(), channelModes: new Map() }));
    return m;
  }

  async persist(roomId: string): Promise<void> {
    const m = this.memoryOf(roomId);
    const state: ChanopState = { roomId, bridgeLevels: [...m.owned], channelModes: [...m.channelModes] };
    await this.store.putChanopState(state).catch((err: Error) => log.warn("Could not store chanop state", { roomId, error: err.message }));
  }

  /** A room's levels may have to change: one write at the end of the window, whatever comes meanwhile. */
  schedule(roomId: string): void {
    if (this.timers.has(roomId)) return;
    const ref = this.links.channelsOf(roomId)[0];
    const windowMs = ref ? (this.config.networks[ref.networkId]?.chanops.powerLevelWindowMs ?? 1_000) : 1_000;
    const timer = setTimeout(() => {
      this.timers.delete(roomId);
      this.roomQueue.push(roomId, () => this.flush(roomId), "power_levels").catch((err: Error) => log.warn("Power levels not updated", { roomId, error: err.message }));
    }, windowMs);
    timer.unref();
    this.timers.set(roomId, timer);
  }

  /** The level IRC says each user of the room should have (highest over its channels). */
  private desiredLevels(roomId: string): { desired: Map<string, number>; eventsDefault: number | null } | null {
    const desired = new Map<string, number>();
    let eventsDefault: number | null = null;
    for (const ref of this.links.channelsOf(roomId)) {
      const pool = this.pools.get(ref.networkId);
      const network = this.config.networks[ref.networkId];
      // Until the bot knows the channel's members, it knows nothing: change nothing.
      if (!pool || !network || pool.bot.state !== "connected" || !pool.roster.knows(ref.channelName) || !this.sides.modesKnown(ref)) return null;
      const offered = pool.bot.prefixModes;
      const map = network.chanops.modePowerMap;
      // Puppets not reconnected yet (just after a restart) are known by their stored nick, not as ghosts.
      const stored = new Map(pool.usersIn(ref.channelName).flatMap((u) => { const nick = pool.recordOf(u)?.nick; return nick ? [[pool.bot.casefold(nick), u] as const] : []; }));
      for (const [nick, modes] of pool.roster.withPrefixes(ref.channelName)) {
        const level = levelForModes(modes, offered, map, Infinity);
        const userId = level === null ? null : this.userIdOf(pool, network, nick, stored);
        if (level === null || !userId) continue;
        desired.set(userId, Math.max(level, desired.get(userId) ?? level));
      }
      if (this.sides.moderated(ref) && !this.links.isPlumbed(roomId)) eventsDefault = Math.max(eventsDefault ?? 0, voiceLevel(network, offered));
    }
    return { desired, eventsDefault };
  }

  /** The Matrix user a channel member is: a Matrix user's puppet, an IRC user's ghost, or nobody (the bot). */
  private userIdOf(pool: NetworkPool, network: NetworkConfig, nick: string, stored: ReadonlyMap<string, string>): string | null {
    const owner = pool.userIdOfNick(nick) ?? stored.get(pool.bot.casefold(nick));
    if (owner) return owner;
    if (pool.isOwnNick(nick) || pool.bot.isSelf(nick) || !network.chanops.ghostPowerLevels) return null;
    return this.ghosts.userIdFor(network, nick, pool.bot.caseMapping);
  }

  private async flush(roomId: string): Promise<void> {
    const wanted = this.desiredLevels(roomId);
    if (!wanted) return void metrics.powerLevelChecks.inc({ result: "waiting" });
    const bot = this.sides.bot();
    const current = await readStateEvent<PowerLevels>(bot, roomId, "m.room.power_levels");
    if (!current) {
      // E.g. the bot has not joined the room yet at start-up: look again a little later (a few times).
      const tries = (this.unreadable.get(roomId) ?? 0) + 1;
      this.unreadable.set(roomId, tries);
      log.warn("Cannot read a room's power levels", { roomId, tries });
      if (tries <= UNREADABLE_RETRIES) setTimeout(() => this.schedule(roomId), UNREADABLE_RETRY_MS * tries).unref();
      return;
    }
    this.unreadable.delete(roomId);
    const memory = this.memoryOf(roomId);
    const creators = await this.creatorsOf(roomId);
    const botLevel = this.botLevel(current, creators);
    const need = current.events?.["m.room.power_levels"] ?? current.state_default ?? DEFAULT_STATE_LEVEL;
    if (botLevel < need) {
      metrics.powerLevelChecks.inc({ result: "powerless" });
      if (wanted.desired.size > 0 || wanted.eventsDefault !== null) await this.tellPowerless(roomId, botLevel, need);
      return;
    }
    const merged = mergePowerLevels({ current, desired: wanted.desired, eventsDefault: wanted.eventsDefault, owned: memory.owned, botUserId: this.sides.botUserId, botLevel, untouchable: creators });
    const ownedChanged = !sameMap(memory.owned, merged.owned);
    if (!merged.changed) {
      metrics.powerLevelChecks.inc({ result: "unchanged" });
      memory.owned = merged.owned;
      if (ownedChanged) await this.persist(roomId);
      return;
    }
    const written = await this.write(roomId, merged.content, botLevel, wanted.desired);
    metrics.powerLevelChecks.inc({ result: "written" });
    // Entries dropped to fit (M_TOO_LARGE) are not the bridge's: it did not set them.
    memory.owned = new Map([...merged.owned].filter(([u, l]) => u === EVENTS_DEFAULT || written.users?.[u] === l || (written.users?.[u] === undefined && l === (written.users_default ?? 0))));
    await this.persist(roomId);
  }

  /** Writes the event; when the homeserver finds it too large, drops entries step by step and says so. */
  /** The bot's power in a room: its entry, or above everyone when it created a room of version 12+. */
  private botLevel(current: PowerLevels, creators: ReadonlySet<string>): number {
    const listed = current.users?.[this.sides.botUserId];
    if (typeof listed === "number") return listed;
    return creators.has(this.sides.botUserId) ? Number.MAX_SAFE_INTEGER : levelOf(current, this.sides.botUserId);
  }

  /** Who created a room (the create event's sender and `additional_creators`), read once per room. */
  private async creatorsOf(roomId: string): Promise<ReadonlySet<string>> {
    let creators = this.creators.get(roomId);
    if (creators) return creators;
    try {
      const events = (await this.sides.bot().matrixClient.getRoomState(roomId)) as { type: string; sender: string; state_key: string; content?: { additional_creators?: unknown } }[];
      const create = events.find((e) => e.type === "m.room.create" && e.state_key === "");
      const more = Array.isArray(create?.content?.additional_creators) ? create.content.additional_creators.filter((u): u is string => typeof u === "string") : [];
      creators = new Set(create ? [create.sender, ...more] : []);
      this.creators.set(roomId, creators);
      return creators;
    } catch {
      return new Set();
    }
  }

  private async write(roomId: string, content: PowerLevels, botLevel: number, desired: Map<string, number>): Promise<PowerLevels> {
    const bot = this.sides.bot();
    let body = content;
    let members: Set<string> | null = null;
    for (let step = 0; ; step++) {
      try {
        await withRetry(() => bot.sendStateEvent(roomId, "m.room.power_levels", "", body as Record<string, unknown>), { giveUpAfterMs: GIVE_UP_AFTER_MS });
        metrics.powerLevelEvents.inc();
        return body;
      } catch (err) {
        if (errcodeOf(err) !== "M_TOO_LARGE" || step > 2) throw err;
        members ??= new Set(await this.sides.joinedMembers(roomId));
        const isGhost = (userId: string) => this.ghosts.parse(userId) !== null;
        // "In the room" counts users IRC still wants levels for: a ghost need not have joined to be in the channel.
        const shrunk = shrinkPowerLevels(body, step, (u) => members!.has(u) || desired.has(u), isGhost, this.sides.botUserId, botLevel);
        log.warn("Power levels too large for the homeserver; dropping entries", { roomId, step: ["at the default level", "of users not in the room", "of ghosts at low levels"][step], dropped: shrunk.dropped });
        body = shrunk.content;
      }
    }
  }

  private async tellPowerless(roomId: string, have: number, need: number): Promise<void> {
    log.warn("The bot may not change power levels in a linked room", { roomId, have, need });
    if (this.toldPowerless.has(roomId)) return;
    this.toldPowerless.add(roomId);
    await this.sides
      .notice(roomId, `The IRC bridge bot has power level ${have} in this room and needs ${need} to change power levels, so IRC channel operators (+o, +v) and moderated channels (+m) are not reflected here. Raise the bot's level to fix this.`)
      .catch(() => undefined);
  }
}

/** The level at which a moderated channel lets people talk: the voice mode's, if the server has it. */
export function voiceLevel(network: NetworkConfig, offered: string): number {
  const map = network.chanops.modePowerMap;
  return offered.includes("v") && typeof map.v === "number" ? map.v : 1;
}

function sameMap(a: Map<string, number>, b: Map<string, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}
