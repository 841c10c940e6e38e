/**
 * Reactions both ways (IRCv3 `+draft/react` / `+draft/unreact` client tags on TAGMSG, naming
 * the reacted-to line's msgid in `+draft/reply` and `+reply`):
 *
 * - Matrix → IRC: an `m.reaction` (m.annotation) to an event the bridge knows the msgid of goes
 *   from the reacting user's puppet as `TAGMSG #chan`. Where the server relays no client tags,
 *   or the msgid is unknown, nothing is sent: a reaction never becomes a line of text. Its
 *   redaction sends `+draft/unreact`.
 * - IRC → Matrix: a react TAGMSG on a bridged line becomes an `m.reaction` from the ghost on
 *   that line's event (in the room's order, after the line itself); `+draft/unreact` redacts it.
 *
 * Each reaction bridged is kept among the message links (see `reactionLinkId`), so un-reacting
 * finds it on either side.
 */
import type { BridgeConfig } from "../config/schema.js";
import type { IrcTagMessage } from "../irc/IrcConnection.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import type { MatrixEvent } from "../matrix/DurableAppService.js";
import type { Ghosts } from "../matrix/Ghosts.js";
import { sendEventAt } from "../matrix/sendAt.js";
import { metrics } from "../metrics/metrics.js";
import type { MessageLink } from "../store/DataStore.js";
import type { MessageLinks } from "../store/MessageLinks.js";
import { annotationOf, parseReactionLinkId, reactionLinkId, reactionTags, readReaction } from "./ircv3Tags.js";
import type { KeyedQueue } from "./KeyedQueue.js";
import type { MatrixRedaction } from "./Redactions.js";
import type { RoomLinks } from "./RoomLinks.js";

const log = getLogger("bridge/reactions");
/** IRC reactions whose Matrix event is remembered in memory too (see `latest`). */
const LATEST_MEMORY = 10_000;

export class Reactions {
  /**
   * The newest Matrix event of each IRC reaction (room and link name → event): a nick that reacts,
   * un-reacts and reacts again with the same key leaves two links of one name in the store,
   * and un-reacting must take back the newer one. Bounded; the store answers for older ones.
   */
  private readonly latest = new Map<string, { roomId: string; eventId: string }>();

  constructor(
    private readonly config: BridgeConfig,
    private readonly links: RoomLinks,
    private readonly pools: Map<string, NetworkPool>,
    private readonly messageLinks: MessageLinks,
    private readonly ghosts: Ghosts,
    /** Per-room order of what goes into Matrix: a reaction waits for the line it reacts to. */
    private readonly roomQueue: KeyedQueue,
  ) {}

  attach(pool: NetworkPool): void {
    pool.on("tagmsg", (m) => this.onIrcTags(pool, m));
  }

  /** An `m.reaction` from a real user in a linked room. */
  async onMatrixReaction(event: MatrixEvent): Promise<void> {
    const annotation = annotationOf(event);
    const roomId = event.room_id as string;
    const sender = event.sender as string;
    const target = annotation ? await this.messageLinks.byEvent(annotation.eventId) : null;
    if (!annotation || !target || target.roomId !== roomId || parseReactionLinkId(target.msgid)) return;
    const sent = await this.sendTags(roomId, sender, target, reactionTags(target.msgid, annotation.key));
    if (!sent) return;
    metrics.ircv3Interactions.inc({ kind: "reaction", direction: "matrix_to_irc" });
    this.messageLinks.add([{ roomId, eventId: event.event_id as string, networkId: target.networkId, msgid: reactionLinkId(sender, target.msgid, annotation.key), at: Date.now() }]);
  }

  /** A Matrix redaction: if it takes back a reaction this user sent to IRC, IRC hears `+draft/unreact`. */
  async onMatrixRedaction(r: MatrixRedaction): Promise<void> {
    const link = await this.messageLinks.byEvent(r.redacts);
    const reaction = link ? parseReactionLinkId(link.msgid) : null;
    // Only the reacting user can take their reaction back on IRC (a moderator's redaction has no IRC equivalent).
    if (!link || !reaction || reaction.who !== r.sender || link.roomId !== r.roomId) return;
    if (await this.sendTags(r.roomId, r.sender, { ...link, msgid: reaction.msgid }, reactionTags(reaction.msgid, reaction.key, true))) {
      metrics.ircv3Interactions.inc({ kind: "unreaction", direction: "matrix_to_irc" });
    }
  }

  /** Sends the tags from the user's puppet into the channel of the line's network (connected and joined on need). */
  private async sendTags(roomId: string, userId: string, line: MessageLink, tags: Record<string, string>): Promise<boolean> {
    const ref = this.links.channelsOf(roomId).find((c) => c.networkId === line.networkId);
    const pool = ref ? this.pools.get(ref.networkId) : undefined;
    if (!ref || !pool || !this.config.networks[ref.networkId]?.ircv3.reactions) return false;
    const connection = await pool.join(userId, ref.channelName, this.links.keyOf(ref.networkId, ref.channel));
    return connection.sendTags(ref.channelName, tags);
  }

  private onIrcTags(pool: NetworkPool, m: IrcTagMessage): void {
    const reaction = readReaction(m.tags);
    if (!reaction || pool.isOwnNick(m.nick) || !this.config.networks[pool.networkId]?.ircv3.reactions) return;
    for (const roomId of this.links.roomsOf(pool.networkId, pool.bot.casefold(m.target))) {
      this.roomQueue
        .push(roomId, () => (reaction.undo ? this.unreactInMatrix(pool, roomId, m.nick, reaction) : this.reactInMatrix(pool, roomId, m.nick, reaction)), "irc_reaction")
        .catch((err: Error) => log.warn("Could not bridge a reaction from IRC", { network: pool.networkId, roomId, nick: m.nick, error: err.message }));
    }
  }

  private async reactInMatrix(pool: NetworkPool, roomId: string, nick: string, reaction: { key: string; msgid: string }): Promise<void> {
    const line = await this.messageLinks.byMsgid(pool.networkId, reaction.msgid);
    if (!line || line.roomId !== roomId) return;
    const intent = await this.ghosts.intentFor(pool.networkId, this.config.networks[pool.networkId], nick, pool.bot.caseMapping);
    const sent = await sendEventAt(intent, roomId, "m.reaction", { "m.relates_to": { rel_type: "m.annotation", event_id: line.eventId, key: reaction.key } });
    metrics.ircv3Interactions.inc({ kind: "reaction", direction: "irc_to_matrix" });
    const id = reactionLinkId(pool.bot.casefold(nick), reaction.msgid, reaction.key);
    this.messageLinks.add([{ roomId, eventId: sent.event_id, networkId: pool.networkId, msgid: id, at: Date.now() }]);
    this.latest.delete(`${roomId}\0${id}`);
    this.latest.set(`${roomId}\0${id}`, { roomId, eventId: sent.event_id });
    if (this.latest.size > LATEST_MEMORY) this.latest.delete(this.latest.keys().next().value as string);
  }

  private async unreactInMatrix(pool: NetworkPool, roomId: string, nick: string, reaction: { key: string; msgid: string }): Promise<void> {
    const id = reactionLinkId(pool.bot.casefold(nick), reaction.msgid, reaction.key);
    const link = this.latest.get(`${roomId}\0${id}`) ?? (await this.messageLinks.byMsgid(pool.networkId, id));
    if (!link || link.roomId !== roomId) return;
    this.latest.delete(`${roomId}\0${id}`);
    const intent = await this.ghosts.intentFor(pool.networkId, this.config.networks[pool.networkId], nick, pool.bot.caseMapping);
    await intent.matrixClient.redactEvent(roomId, link.eventId);
    metrics.ircv3Interactions.inc({ kind: "unreaction", direction: "irc_to_matrix" });
  }
}
