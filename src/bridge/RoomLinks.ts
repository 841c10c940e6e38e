/**
 * Which Matrix rooms are linked to which IRC channels, indexed both ways in memory and kept
 * in the store. Static mappings from the config are written in at start-up; links that came
 * from the config but are no longer in it are removed.
 */
import type { BridgeConfig } from "../config/schema.js";
import { casefold } from "../format/casemap.js";
import { getLogger } from "../logging.js";
import type { SecretBox } from "../security/SecretBox.js";
import type { DataStore, RoomLink } from "../store/DataStore.js";

const log = getLogger("bridge/links");

export interface ChannelRef {
  networkId: string;
  /** Casefolded with the network's case mapping. */
  channel: string;
  channelName: string;
}

const channelKey = (networkId: string, channel: string) => `${networkId}\u0000${channel}`;

export class RoomLinks {
  private readonly byRoom = new Map<string, RoomLink[]>();
  private readonly byChannel = new Map<string, RoomLink[]>();
  /** Channel keys, in clear in memory only: from the config, or given with !join (stored sealed). */
  private readonly keys = new Map<string, string>();

  constructor(
    private readonly store: DataStore,
    private readonly secrets: SecretBox | null = null,
  ) {}

  async load(config: BridgeConfig): Promise<void> {
    const fromConfig: RoomLink[] = Object.entries(config.networks).flatMap(([networkId, network]) =>
      Object.entries(network.mappings).flatMap(([channelName, mapping]) =>
        mapping.roomIds.map((roomId) => ({ roomId, networkId, channel: casefold(channelName), channelName, origin: "config" as const })),
      ),
    );
    this.keys.clear();
    for (const [networkId, network] of Object.entries(config.networks)) {
      for (const [channelName, mapping] of Object.entries(network.mappings)) {
        if (mapping.key) this.keys.set(channelKey(networkId, casefold(channelName)), mapping.key);
      }
    }
    const wanted = new Set(fromConfig.map((l) => `${l.roomId} ${channelKey(l.networkId, l.channel)}`));
    for (const link of await this.store.getRoomLinks()) {
      if (link.origin === "config" && !wanted.has(`${link.roomId} ${channelKey(link.networkId, link.channel)}`)) {
        await this.store.removeRoomLink(link.roomId, link.networkId, link.channel);
      }
    }
    for (const link of fromConfig) await this.store.upsertRoomLink(link);
    this.byRoom.clear();
    this.byChannel.clear();
    for (const link of await this.store.getRoomLinks()) {
      this.index(link);
      const key = channelKey(link.networkId, link.channel);
      if (link.sealedKey && !this.keys.has(key)) this.openKey(key, link.sealedKey);
    }
  }

  private openKey(key: string, sealed: string): void {
    try {
      if (this.secrets) this.keys.set(key, this.secrets.open(sealed));
    } catch (err) {
      log.warn("A stored channel key cannot be opened (was credentials.keyFile changed?)", { error: (err as Error).message });
    }
  }

  /** Sets a channel's key: kept in memory, and stored sealed when the bridge has a credentials key. */
  async setKey(networkId: string, foldedChannel: string, key: string): Promise<void> {
    this.keys.set(channelKey(networkId, foldedChannel), key);
    if (!this.secrets) return;
    for (const link of this.byChannel.get(channelKey(networkId, foldedChannel)) ?? []) {
      link.sealedKey = this.secrets.seal(key);
      await this.store.upsertRoomLink(link);
    }
  }

  /** Links a room to a channel (a portal or plumbed room), in the store and here. */
  async add(link: RoomLink): Promise<void> {
    await this.store.upsertRoomLink(link);
    this.index(link);
  }

  /** Unlinks a room from a channel, in the store and here. */
  async remove(roomId: string, networkId: string, foldedChannel: string): Promise<void> {
    await this.store.removeRoomLink(roomId, networkId, foldedChannel);
    const drop = (map: Map<string, RoomLink[]>, key: string) => {
      const left = (map.get(key) ?? []).filter((l) => !(l.roomId === roomId && l.networkId === networkId && l.channel === foldedChannel));
      if (left.length > 0) map.set(key, left);
      else map.delete(key);
    };
    drop(this.byRoom, roomId);
    drop(this.byChannel, channelKey(networkId, foldedChannel));
    if (!this.byChannel.has(channelKey(networkId, foldedChannel))) this.keys.delete(channelKey(networkId, foldedChannel));
  }

  /** A room's links, with their origins. */
  linksOf(roomId: string): RoomLink[] {
    return [...(this.byRoom.get(roomId) ?? [])];
  }

  /** The portal room the bridge made for a channel, if any. */
  portalRoomOf(networkId: string, foldedChannel: string): string | null {
    return (this.byChannel.get(channelKey(networkId, foldedChannel)) ?? []).find((l) => l.origin === "portal")?.roomId ?? null;
  }

  /** Whether a room was linked by its own moderators (IRC modes then never change its join rule or directory entry). */
  isPlumbed(roomId: string): boolean {
    return (this.byRoom.get(roomId) ?? []).some((l) => l.origin === "plumbed");
  }

  /** Idempotent: a link indexed twice (two approvals racing) would relay every line twice. */
  private index(link: RoomLink): void {
    const same = (l: RoomLink) => l.roomId === link.roomId && l.networkId === link.networkId && l.channel === link.channel;
    const add = (map: Map<string, RoomLink[]>, key: string) => map.set(key, [...(map.get(key) ?? []).filter((l) => !same(l)), link]);
    add(this.byRoom, link.roomId);
    add(this.byChannel, channelKey(link.networkId, link.channel));
  }

  channelsOf(roomId: string): ChannelRef[] {
    return (this.byRoom.get(roomId) ?? []).map(({ networkId, channel, channelName }) => ({ networkId, channel, channelName }));
  }

  roomsOf(networkId: string, foldedChannel: string): string[] {
    return (this.byChannel.get(channelKey(networkId, foldedChannel)) ?? []).map((l) => l.roomId);
  }

  keyOf(networkId: string, foldedChannel: string): string | null {
    return this.keys.get(channelKey(networkId, foldedChannel)) ?? null;
  }

  allRooms(): string[] {
    return [...this.byRoom.keys()];
  }

  /** The channels of a network that have rooms, each with its key (for the bot to hold). */
  channelsOfNetwork(networkId: string): { name: string; key: string | null }[] {
    return [...this.byChannel.values()].flatMap(([first]) =>
      first.networkId === networkId ? [{ name: first.channelName, key: this.keyOf(networkId, first.channel) }] : [],
    );
  }
}
