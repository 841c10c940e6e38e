/**
 * What Matrix → IRC text needs to look up (see MatrixToIrc's MatrixSide): the IRC nick of a
 * Matrix user (puppet or ghost), the sender of a replied-to event, the msgid an event was
 * bridged as, and a room's own line limit (a state event, cached for a minute).
 */
import type { Intent } from "matrix-appservice-bridge";
import type { NetworkPool } from "../irc/NetworkPool.js";
import type { Ghosts } from "../matrix/Ghosts.js";
import type { MessageLinks } from "../store/MessageLinks.js";
import { readStateEvent } from "../matrix/readState.js";

/** The room state event a room sets its own line limit with: `{"lineLimit": N}`. */
export const LINE_LIMIT_EVENT = "org.matrix.irc.line_limit";
const LINE_LIMIT_CACHE_MS = 60_000;
const MAX_CACHED_ROOMS = 10_000;

export class TextLookups {
  private readonly limits = new Map<string, { at: number; value: number | null }>();

  constructor(
    private readonly bot: () => Intent,
    private readonly pools: Map<string, NetworkPool>,
    private readonly ghosts: Ghosts,
    private readonly links: MessageLinks,
  ) {}

  nickOf(networkId: string, userId: string): string | null {
    const puppet = this.pools.get(networkId)?.nickOf(userId);
    if (puppet) return puppet;
    const ghost = this.ghosts.parse(userId);
    return ghost && ghost.networkId === networkId ? ghost.nick : null;
  }

  async senderOf(roomId: string, eventId: string): Promise<string | null> {
    const event = await this.bot().getEvent(roomId, eventId, true);
    return typeof event?.sender === "string" ? event.sender : null;
  }

  async msgidOf(networkId: string, eventId: string): Promise<string | null> {
    const link = await this.links.byEvent(eventId);
    return link && link.networkId === networkId ? link.msgid : null;
  }

  async roomLineLimit(roomId: string): Promise<number | null> {
    const cached = this.limits.get(roomId);
    if (cached && Date.now() - cached.at < LINE_LIMIT_CACHE_MS) return cached.value;
    const content = await readStateEvent<{ lineLimit?: unknown }>(this.bot(), roomId, LINE_LIMIT_EVENT);
    const raw = content?.lineLimit;
    const value = typeof raw === "number" && Number.isInteger(raw) && raw > 0 ? raw : null;
    if (this.limits.size >= MAX_CACHED_ROOMS) this.limits.delete(this.limits.keys().next().value!);
    this.limits.set(roomId, { at: Date.now(), value });
    return value;
  }
}
