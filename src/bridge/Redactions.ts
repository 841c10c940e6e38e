/**
 * Redactions both ways.
 *
 * - `MatrixRedactions` hands each Matrix redaction to a list of small handlers (un-reacting,
 *   REDACT of a bridged line, others such as media links add theirs), each failing alone.
 * - `LineRedactions`: a Matrix user's redaction of a bridged line becomes
 *   `REDACT <channel> <msgid> [:reason]` from their puppet where the server offers
 *   `draft/message-redaction`, else nothing (IRC has no way to take a line back). An IRC
 *   `REDACT` of a bridged line redacts its Matrix event, by the redacting nick's ghost, or by
 *   the bridge bot where the ghost may not (another's event, without power).
 */
import type { Intent } from "matrix-appservice-bridge";
import type { BridgeConfig } from "../config/schema.js";
import type { IrcRedaction } from "../irc/IrcConnection.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import type { MatrixEvent } from "../matrix/DurableAppService.js";
import type { Ghosts } from "../matrix/Ghosts.js";
import { metrics } from "../metrics/metrics.js";
import type { MessageLinks } from "../store/MessageLinks.js";
import { parseReactionLinkId, redactedEventId } from "./ircv3Tags.js";
import type { KeyedQueue } from "./KeyedQueue.js";
import type { RoomLinks } from "./RoomLinks.js";

const log = getLogger("bridge/redactions");

export interface MatrixRedaction {
  roomId: string;
  /** The event taken back. */
  redacts: string;
  sender: string;
  reason: string | null;
}

export type RedactionHandler = (redaction: MatrixRedaction) => Promise<void>;

export class MatrixRedactions {
  private readonly handlers: { name: string; handle: RedactionHandler }[] = [];

  add(name: string, handle: RedactionHandler): void {
    this.handlers.push({ name, handle });
  }

  /** One `m.room.redaction` from a real Matrix user: every handler sees it; one failing does not stop the others. */
  async onRedaction(event: MatrixEvent): Promise<void> {
    const redacts = redactedEventId(event);
    if (!redacts || typeof event.room_id !== "string" || typeof event.sender !== "string") return;
    const reason = (event.content as { reason?: unknown } | undefined)?.reason;
    const redaction: MatrixRedaction = { roomId: event.room_id, redacts, sender: event.sender, reason: typeof reason === "string" && reason ? reason : null };
    await Promise.all(
      this.handlers.map(({ name, handle }) =>
        handle(redaction).catch((err: Error) => log.warn("A redaction handler failed", { handler: name, roomId: redaction.roomId, redacts, error: err.message })),
      ),
    );
  }
}

/** What LineRedactions needs of a pool (narrow, so its logic is tested with fakes). */
export type RedactionPool = Pick<NetworkPool, "networkId" | "connectionOf" | "isOwnNick" | "bot" | "on">;

export class LineRedactions {
  constructor(
    private readonly config: BridgeConfig,
    private readonly links: Pick<RoomLinks, "channelsOf" | "roomsOf">,
    private readonly pools: Map<string, RedactionPool>,
    private readonly messageLinks: Pick<MessageLinks, "byEvent" | "byMsgid">,
    private readonly ghosts: Pick<Ghosts, "intentFor">,
    /** Per-room order of what goes into Matrix: a REDACT waits for the line it takes back. */
    private readonly roomQueue: Pick<KeyedQueue, "push">,
    private readonly bot: () => Pick<Intent, "matrixClient">,
    /**
     * Told of every Matrix event the bridge itself redacted (media links of it die): the
     * redaction comes back from a bridge user, and the bridge's own events are not handled.
     */
    private readonly redactedByBridge: (roomId: string, eventId: string) => Promise<void> = async () => undefined,
  ) {}

  attach(pool: RedactionPool): void {
    pool.on("redact", (r) => void this.onIrcRedact(pool, r));
  }

  /** A Matrix redaction: REDACT of the bridged line, where the server takes it. */
  async onMatrixRedaction(r: MatrixRedaction): Promise<void> {
    const link = await this.messageLinks.byEvent(r.redacts);
    if (!link || link.roomId !== r.roomId || parseReactionLinkId(link.msgid)) return;
    const ref = this.links.channelsOf(r.roomId).find((c) => c.networkId === link.networkId && this.config.networks[c.networkId]?.ircv3.redactions);
    // Only an open connection: nobody is connected to IRC just to take a line back.
    const connection = ref ? this.pools.get(ref.networkId)?.connectionOf(r.sender) : null;
    if (!ref || !connection) return;
    if (await connection.redact(ref.channelName, link.msgid, r.reason ?? undefined)) {
      metrics.ircv3Interactions.inc({ kind: "redaction", direction: "matrix_to_irc" });
    }
  }

  /** An IRC REDACT of a bridged line: its Matrix event is redacted, in the room's order. */
  onIrcRedact(pool: RedactionPool, r: IrcRedaction): Promise<void[]> {
    // `react:` names are the bridge's own links of reactions, never a server's msgid.
    if (pool.isOwnNick(r.nick) || r.msgid.startsWith("react:") || !this.config.networks[pool.networkId]?.ircv3.redactions) return Promise.resolve([]);
    const rooms = this.links.roomsOf(pool.networkId, pool.bot.casefold(r.target));
    return Promise.all(
      rooms.map((roomId) =>
        this.roomQueue
          .push(roomId, () => this.redactInRoom(pool, roomId, r), "irc_redaction")
          .catch((err: Error) => void log.warn("Could not redact a line taken back on IRC", { network: pool.networkId, roomId, msgid: r.msgid, error: err.message })),
      ),
    );
  }

  private async redactInRoom(pool: RedactionPool, roomId: string, r: IrcRedaction): Promise<void> {
    const link = await this.messageLinks.byMsgid(pool.networkId, r.msgid);
    if (!link || link.roomId !== roomId) return;
    const reason = r.reason || undefined;
    try {
      const ghost = await this.ghosts.intentFor(pool.networkId, this.config.networks[pool.networkId], r.nick, pool.bot.caseMapping);
      await ghost.matrixClient.redactEvent(roomId, link.eventId, reason);
    } catch (err) {
      // The IRC server allowed it (an operator, say); the ghost may lack the power: the bot does it.
      log.info("The ghost could not redact; the bridge bot does", { roomId, eventId: link.eventId, error: (err as Error).message });
      await this.bot().matrixClient.redactEvent(roomId, link.eventId, reason);
    }
    await this.redactedByBridge(roomId, link.eventId).catch((err: Error) => log.warn("Could not record a redaction for media links", { roomId, eventId: link.eventId, error: err.message }));
    metrics.ircv3Interactions.inc({ kind: "redaction", direction: "irc_to_matrix" });
  }
}
