/**
 * IRC channel modes → room settings. The bot asks `MODE #chan` when it has a channel's member
 * list (after each join and reconnect) and follows every MODE line since:
 *
 * - `+i` or `+k` → invite-only join rule; both gone → the network's `portals.joinRule`.
 * - `+s` or `+p` → out of the room directory; both gone → published again if the network
 *   publishes portals. A room linked to several channels stays out while any is secret.
 * - `+m` → `events_default` at the voice level (written by ChanopSync with the power levels).
 *
 * Only changes act: the modes last applied to each room are stored, so a restart (or the same
 * modes reported again) changes nothing. Plumbed rooms keep their own join rule, directory
 * entry and events_default.
 */
import type { Intent } from "matrix-appservice-bridge";
import type { BridgeConfig } from "../config/schema.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import { withRetry } from "../matrix/retry.js";
import { metrics } from "../metrics/metrics.js";
import type { ChanopSync } from "./ChanopSync.js";
import { GIVE_UP_AFTER_MS } from "./IrcToMatrix.js";
import type { KeyedQueue } from "./KeyedQueue.js";
import type { ChannelRef, RoomLinks } from "./RoomLinks.js";
import { readStateEvent } from "../matrix/readState.js";

const log = getLogger("bridge/channel-modes");
/** The channel modes that shape a room. */
const RELEVANT = "ikmps";

/** The relevant modes of a mode string or set of letters, sorted ("+ntk key" → "k"). */
export function relevantModes(modes: string): string {
  const word = modes.trim().split(/\s+/)[0] ?? "";
  return [...new Set(word.replace(/^\+/, "").split(""))].filter((m) => RELEVANT.includes(m)).sort().join("");
}

/** Applies MODE changes (e.g. +i, -k) to a set of relevant modes. */
export function applyModeChanges(before: string, changes: { mode: string }[]): string {
  const set = new Set(before.split("").filter(Boolean));
  for (const { mode } of changes) {
    const letter = mode[1];
    if (!letter || !RELEVANT.includes(letter)) continue;
    if (mode[0] === "+") set.add(letter);
    else set.delete(letter);
  }
  return [...set].sort().join("");
}

const channelKey = (networkId: string, folded: string) => `${networkId}\u0000${folded}`;

export class ChannelModes {
  /** Relevant modes of each channel the bot follows, by network and casefolded name. */
  private readonly current = new Map<string, string>();
  private readonly pools = new Map<string, NetworkPool>();

  constructor(
    private readonly config: BridgeConfig,
    private readonly links: RoomLinks,
    private readonly chanops: ChanopSync,
    private readonly roomQueue: KeyedQueue,
    private readonly bot: () => Intent,
  ) {}

  attach(pool: NetworkPool): void {
    this.pools.set(pool.networkId, pool);
    pool.on("names", (channel) => {
      if (this.links.roomsOf(pool.networkId, pool.bot.casefold(channel)).length > 0) this.ask(pool, channel);
    });
    pool.bot.on("channelModeIs", ({ channel, modes }) => this.update(pool, channel, relevantModes(modes)));
    pool.bot.on("channelMode", ({ channel, changes }) => {
      const key = channelKey(pool.networkId, pool.bot.casefold(channel));
      if (!this.current.has(key)) return; // not known yet: the 324 answer will say
      this.update(pool, channel, applyModeChanges(this.current.get(key)!, changes));
    });
    pool.bot.on("disconnected", () => {
      for (const key of [...this.current.keys()]) if (key.startsWith(`${pool.networkId}\u0000`)) this.current.delete(key);
    });
  }

  /** A room was just linked to a channel the bot is in (a new portal): the channel's modes apply to it. */
  linked(pool: NetworkPool, channelName: string): void {
    const folded = pool.bot.casefold(channelName);
    if (!this.current.has(channelKey(pool.networkId, folded))) return void this.ask(pool, channelName);
    for (const roomId of this.links.roomsOf(pool.networkId, folded)) {
      this.roomQueue.push(roomId, () => this.apply(roomId), "room_modes").catch((err: Error) => log.warn("Room settings not updated for channel modes", { roomId, channelName, error: err.message }));
    }
  }

  private ask(pool: NetworkPool, channel: string): void {
    pool.bot.writer.send("MODE", [channel]).catch((err: Error) => log.warn("Could not ask a channel's modes", { network: pool.networkId, channel, error: err.message }));
  }

  /** Whether the bot knows a linked channel's modes (it has asked since it joined). */
  knows(ref: ChannelRef): boolean {
    return this.current.has(channelKey(ref.networkId, ref.channel));
  }

  /** Whether a linked channel is moderated (+m) now. */
  moderated(ref: ChannelRef): boolean {
    return this.current.get(channelKey(ref.networkId, ref.channel))?.includes("m") ?? false;
  }

  private update(pool: NetworkPool, channel: string, modes: string): void {
    const folded = pool.bot.casefold(channel);
    const key = channelKey(pool.networkId, folded);
    const before = this.current.get(key);
    this.current.set(key, modes);
    if (before === modes) return;
    if (before === undefined) log.info("Channel modes known", { network: pool.networkId, channel, modes });
    for (const roomId of this.links.roomsOf(pool.networkId, folded)) {
      // Power levels wait for the modes to be known (+m): now they are.
      if (before === undefined) this.chanops.schedule(roomId);
      this.roomQueue.push(roomId, () => this.apply(roomId), "room_modes").catch((err: Error) => log.warn("Room settings not updated for channel modes", { roomId, channel, error: err.message }));
    }
  }

  /** Brings one room in line with its channels' modes, acting only on what changed since last applied. */
  private async apply(roomId: string): Promise<void> {
    const memory = this.chanops.memoryOf(roomId);
    const refs = this.links.channelsOf(roomId);
    const now = new Map<string, string>();
    for (const ref of refs) {
      const modes = this.current.get(channelKey(ref.networkId, ref.channel));
      if (modes === undefined) return; // a channel not known yet: wait for it
      now.set(channelKey(ref.networkId, ref.channel), modes);
    }
    const was = (test: RegExp) => [...now.keys()].some((k) => memory.channelModes.has(k) && test.test(memory.channelModes.get(k)!));
    const is = (test: RegExp) => [...now.values()].some((m) => test.test(m));
    const known = [...now.keys()].every((k) => memory.channelModes.has(k));
    const changed = [...now].some(([k, m]) => memory.channelModes.get(k) !== m);
    if (!changed) return;
    if ([...now].some(([k, m]) => /m/.test(m) !== /m/.test(memory.channelModes.get(k) ?? ""))) this.chanops.schedule(roomId);
    if (!this.links.isPlumbed(roomId)) {
      const network = this.config.networks[refs[0].networkId];
      const invite = is(/[ik]/);
      if (invite !== was(/[ik]/) || (!known && invite)) await this.setJoinRule(roomId, invite ? "invite" : network.portals.joinRule);
      const secret = is(/[sp]/);
      if (secret !== was(/[sp]/) || (!known && secret)) {
        if (secret) await this.setVisibility(roomId, "private");
        else if (network.portals.publish) await this.setVisibility(roomId, "public");
      }
    }
    memory.channelModes = new Map([...memory.channelModes, ...now]);
    await this.chanops.persist(roomId);
  }

  private async setJoinRule(roomId: string, rule: string): Promise<void> {
    const bot = this.bot();
    const current = await readStateEvent<{ join_rule?: string }>(bot, roomId, "m.room.join_rules");
    if (current?.join_rule === rule) return;
    await withRetry(() => bot.sendStateEvent(roomId, "m.room.join_rules", "", { join_rule: rule }), { giveUpAfterMs: GIVE_UP_AFTER_MS });
    metrics.roomModeChanges.inc({ kind: "join_rule" });
    log.info("Join rule changed for the channel's modes", { roomId, rule });
  }

  private async setVisibility(roomId: string, visibility: "public" | "private"): Promise<void> {
    try {
      await withRetry(() => this.bot().matrixClient.setDirectoryVisibility(roomId, visibility), { giveUpAfterMs: GIVE_UP_AFTER_MS });
    } catch (err) {
      // Homeservers may forbid publishing (Synapse's room_list_publication_rules): the rest still applies.
      return void log.warn("Room directory entry not changed for the channel's modes", { roomId, visibility, error: (err as Error).message });
    }
    metrics.roomModeChanges.inc({ kind: "directory" });
    log.info("Room directory entry changed for the channel's modes", { roomId, visibility });
  }
}
