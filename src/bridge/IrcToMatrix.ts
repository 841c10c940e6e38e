/**
 * IRC → Matrix: each line of a linked channel (once, from the pool's broker) is sent into every
 * room of that channel by the speaker's ghost, one ordered queue per room. A slow or briefly
 * unreachable homeserver delays the queue (with retries) instead of dropping lines.
 */
import type { BridgeConfig } from "../config/schema.js";
import { ircContent } from "../format/ircContent.js";
import { MSGTYPE_OF_KIND } from "../format/msgtypes.js";
import type { IrcMessage } from "../irc/IrcConnection.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import type { Ghosts } from "../matrix/Ghosts.js";
import { withRetry } from "../matrix/retry.js";
import { newTxnId, sendEventAt } from "../matrix/sendAt.js";
import { metrics, relayMetrics } from "../metrics/metrics.js";
import type { MessageLink } from "../store/DataStore.js";
import { QueueFullError, type KeyedQueue } from "./KeyedQueue.js";
import type { RoomLinks } from "./RoomLinks.js";

const log = getLogger("bridge/irc-to-matrix");

/** How long a line keeps being retried while the homeserver is failing, before it is logged as lost. */
export const GIVE_UP_AFTER_MS = 30 * 60_000;

/** What IrcToMatrix tells, and asks of, the rest of the bridge. */
export interface IrcToMatrixHooks {
  /** Where Matrix event ID ↔ IRC msgid pairs go once a line is in Matrix. */
  onLinked(links: MessageLink[]): void;
  /** Told when a ghost has joined a room by speaking there. */
  onGhostInRoom(roomId: string, userId: string): void;
  /** Told when a line by a ghost is queued for a room; the ghost's leave waits until the release is called. */
  onQueued(roomId: string, userId: string): () => void;
  /** Whether a Matrix user wants IRC lines that say their nick to mention them. */
  wantsMentions(userId: string): boolean;
  /** The Matrix event an IRC msgid was bridged as (for a line that replies to it), if known. */
  linkOfMsgid(networkId: string, msgid: string): Promise<MessageLink | null>;
  /** A line is in Matrix as `eventId`, sent by the ghost `userId` (for replies to it). */
  onDelivered?(eventId: string, userId: string): void;
  /** Whether a delivered line is the canary's to take (see ops/Canary): it then goes no further. */
  takenByCanary?(networkId: string, msg: IrcMessage): boolean;
}

/** The msgid an IRC line replies to (`+reply`, or `+draft/reply` as most clients still send). */
export function replyMsgidOf(tags: Record<string, string>): string | null {
  return tags["+reply"] || tags["+draft/reply"] || null;
}

/** Adds `m.relates_to` for a reply to `eventId` (when the replied-to line is known in this room). */
export async function withReply(
  content: Record<string, unknown>,
  networkId: string,
  roomId: string,
  tags: Record<string, string>,
  linkOf: (networkId: string, msgid: string) => Promise<MessageLink | null>,
): Promise<Record<string, unknown>> {
  const msgid = replyMsgidOf(tags);
  const link = msgid ? await linkOf(networkId, msgid).catch(() => null) : null;
  return link && link.roomId === roomId ? { ...content, "m.relates_to": { "m.in_reply_to": { event_id: link.eventId } } } : content;
}

export class IrcToMatrix {
  constructor(
    private readonly config: BridgeConfig,
    private readonly links: RoomLinks,
    private readonly ghosts: Ghosts,
    private readonly roomQueue: KeyedQueue,
    private readonly hooks: IrcToMatrixHooks,
  ) {}

  attach(pool: NetworkPool): void {
    pool.on("channelLine", (msg) => this.onChannelLine(pool, msg));
  }

  private onChannelLine(pool: NetworkPool, msg: IrcMessage): void {
    // Here, where every delivered line arrives, the canary sees its probes come back.
    if (this.hooks.takenByCanary?.(pool.networkId, msg)) return;
    if (pool.isOwnNick(msg.nick)) return;
    const rooms = this.links.roomsOf(pool.networkId, pool.bot.casefold(msg.target));
    if (rooms.length === 0) return;
    // Built once per line, whatever the number of rooms; mentions are of the nicks at the time of the line.
    const content = ircContent(MSGTYPE_OF_KIND[msg.kind], msg.text, (nick) => this.mentionable(pool, nick));
    const ghost = this.ghosts.userIdFor(this.config.networks[pool.networkId], msg.nick, pool.bot.caseMapping);
    for (const roomId of rooms) {
      const release = this.hooks.onQueued(roomId, ghost);
      this.roomQueue.push(roomId, () => this.deliver(pool, roomId, msg, content, ghost), "irc_line").then(release, (err: Error) => {
        release();
        metrics.messagesFailed.inc({ direction: "irc_to_matrix", network: pool.networkId });
        // A full queue logs its own refusals (once per episode, with counts), not one error per line.
        if (err instanceof QueueFullError) return;
        log.error("Line from IRC could not be delivered to Matrix", { network: pool.networkId, channel: msg.target, nick: msg.nick, roomId, error: err.message });
      });
    }
  }

  private mentionable(pool: NetworkPool, nick: string): string | null {
    const userId = pool.userIdOfNick(nick);
    return userId && this.hooks.wantsMentions(userId) ? userId : null;
  }

  /** `ghost` is the speaker's user ID (onChannelLine has it). */
  private async deliver(pool: NetworkPool, roomId: string, msg: IrcMessage, content: Record<string, unknown>, ghost: string): Promise<void> {
    const network = this.config.networks[pool.networkId];
    // A replayed line may be in this room already (delivered just before a crash, its position
    // not yet stored): its msgid's link says so. (Of a channel with several rooms, one link is kept.)
    if (msg.recovered && msg.tags.msgid && (await this.hooks.linkOfMsgid(pool.networkId, msg.tags.msgid).catch(() => null))?.roomId === roomId) {
      metrics.linesDeduplicated.inc({ network: pool.networkId });
      pool.reachedMatrix(msg);
      return;
    }
    // One transaction ID for every try: a retry after a lost answer is not a second event.
    const txnId = newTxnId();
    // The time the homeserver takes to answer is not the bridge's.
    let homeserverMs = 0;
    const { event_id: eventId } = await withRetry(
      async () => {
        // Per line, nothing is awaited that is known already: the ghost's intent, and content with no reply.
        const intent = this.ghosts.preparedIntent(ghost, msg.nick) ?? (await this.ghosts.intentFor(pool.networkId, network, msg.nick, pool.bot.caseMapping));
        const withRelation = replyMsgidOf(msg.tags) === null ? content : await withReply(content, pool.networkId, roomId, msg.tags, this.hooks.linkOfMsgid);
        // Stamped with the IRC time, so lines that waited (a slow homeserver, a replay) read as said.
        const asked = Date.now();
        const sent = await sendEventAt(intent, roomId, "m.room.message", withRelation, msg.time, txnId).finally(() => (homeserverMs += Date.now() - asked));
        this.hooks.onGhostInRoom(roomId, intent.userId);
        this.hooks.onDelivered?.(sent.event_id, intent.userId);
        return sent;
      },
      {
        giveUpAfterMs: GIVE_UP_AFTER_MS,
        onRetry: (err, attempt, delayMs) => log.warn("Homeserver refused a line; retrying", { roomId, attempt, delayMs, error: (err as Error).message }),
      },
    );
    relayMetrics.relayedToMatrix.of(pool.networkId).inc();
    pool.reachedMatrix(msg);
    if (msg.tags.msgid) this.hooks.onLinked([{ roomId, eventId, networkId: pool.networkId, msgid: msg.tags.msgid, at: Date.now() }]);
    const now = Date.now();
    relayMetrics.ircToMatrixDelivery.observe((now - msg.receivedAt) / 1000);
    relayMetrics.secondsToMatrix.observe(Math.max(0, now - msg.receivedAt - homeserverMs) / 1000);
  }
}
