/**
 * Matrix → IRC: a Matrix user's text, notice or emote (or file, as a line with a media link:
 * format/msgtypes.ts ircMessageOf) in a linked room goes out over that user's own IRC
 * connection (opened and joined on first need), one line per line of the body, in the room's
 * order. When it cannot be delivered the sender is told in the room.
 */
import { onEventWritten } from "../metrics/relayTiming.js";
import type { BridgeConfig } from "../config/schema.js";
import { effectiveLineLimit, SplitFallback, type LongMessagePolicy } from "../format/longMessages.js";
import { isBridgeCommand, type TextContent } from "../format/matrixContent.js";
import { ircMessageOf, type MediaLinker } from "../format/msgtypes.js";
import { IrcFailure } from "../irc/errors.js";
import { messageBudget, splitMessage } from "../irc/IrcWriter.js";
import type { IrcMessageKind } from "../irc/IrcConnection.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import { KeepInJournal, type MatrixEvent } from "../matrix/DurableAppService.js";
import type { MessageLink } from "../store/DataStore.js";
import { metrics, relayMetrics } from "../metrics/metrics.js";
import { QueueFullError, type KeyedQueue } from "./KeyedQueue.js";
import type { OutgoingText } from "./OutgoingText.js";
import type { ChannelRef, RoomLinks } from "./RoomLinks.js";

const log = getLogger("bridge/matrix-to-irc");


export interface MatrixSide {
  /** True once the bridge is shutting down: what cannot go now stays in the journal. */
  stopping(): boolean;
  /** Posts an m.notice from the bridge bot into a room. */
  notice(roomId: string, text: string): Promise<void>;
  /** Tells a user something: in their admin room, else in `roomId`. */
  tellUser(userId: string, roomId: string, text: string): Promise<void>;
  /** Sends a message into a room as the ghost of an IRC nick (here: a Matrix user's puppet). */
  sendAsIrcUser(networkId: string, nick: string, roomId: string, content: Record<string, unknown>): Promise<void>;
  /** Removes a Matrix user from a room (the bridge bot kicks them). */
  removeFromRoom(roomId: string, userId: string, reason: string): Promise<void>;
  /** The room's own line limit (state event `org.matrix.irc.line_limit`), if it set one. */
  roomLineLimit(roomId: string): Promise<number | null>;
}

interface MessageContent extends TextContent {
  msgtype?: unknown;
  [key: string]: unknown;
}

export class MatrixToIrc {
  constructor(
    private readonly config: BridgeConfig,
    private readonly links: RoomLinks,
    private readonly pools: Map<string, NetworkPool>,
    /** Per-room order of what goes into Matrix (notices, copies into sibling rooms). */
    private readonly toMatrix: KeyedQueue,
    /**
     * Per-room order of what goes to IRC, a queue of its own: a homeserver failing for a room
     * (IRC → Matrix retrying for minutes) never holds that room's messages to IRC.
     */
    private readonly toIrc: KeyedQueue,
    private readonly matrix: MatrixSide,
    /** Where the msgids learnt for sent messages go (Matrix event ID ↔ IRC msgid). */
    private readonly onLinked: (links: MessageLink[]) => void,
    /** The lines a message becomes (formatting, pills, replies, edits). */
    private readonly text: OutgoingText,
    /** What a message over the line limit becomes (split with a notice; with media links, its first line and a link). */
    private readonly longMessages: LongMessagePolicy = new SplitFallback(),
    /** Links to files the bridge serves (`media.publicUrl`); null: files are refused with a notice. */
    private readonly media: MediaLinker | null = null,
  ) {}

  /** The lines for one channel, within the line limit (the sender is told when it was long). */
  private async prepare(ref: ChannelRef, roomId: string, eventId: string, sender: string, kind: IrcMessageKind, content: MessageContent): Promise<{ lines: string[]; tags?: Record<string, string> } | null> {
    const network = this.config.networks[ref.networkId];
    const prepared = network ? await this.text.linesFor(ref.networkId, roomId, eventId, sender, content) : null;
    if (!network || !prepared) return null;
    const limit = effectiveLineLimit(network.lineLimit, network.maxLineLimit, await this.matrix.roomLineLimit(roomId).catch(() => null));
    // Counted as IRC will see it: a long line becomes several (estimated with the writer's
    // assumed host, as before the server tells the puppet its real one).
    const nick = this.pools.get(ref.networkId)?.nickOf(sender) ?? "x".repeat(30);
    const budget = messageBudget(nick, null, null, kind === "notice" ? "NOTICE" : "PRIVMSG", ref.channelName) - (kind === "action" ? 9 : 0);
    const ircLines = prepared.lines.reduce((n, line) => n + splitMessage(line, Math.max(budget, 16)).length, 0);
    const { lines, notice } = await this.longMessages.shorten(prepared.lines, limit, { roomId, sender, ircLines, eventId });
    if (notice) {
      this.toMatrix
        .push(roomId, () => this.matrix.tellUser(sender, roomId, notice))
        .catch((err: Error) => log.warn("Could not tell a sender their message was long", { roomId, sender, error: err.message }));
    }
    return { ...prepared, lines };
  }

  /** Handles one m.room.message from a real Matrix user; resolves once it is on IRC or refused. */
  async onMessage(event: MatrixEvent): Promise<void> {
    const roomId = event.room_id as string;
    const sender = event.sender as string;
    const channels = this.links.channelsOf(roomId);
    if (channels.length === 0) return;
    const message = ircMessageOf(event, this.media);
    if ("refused" in message) {
      await this.toMatrix.push(roomId, () => this.matrix.notice(roomId, `${sender}: ${message.refused}`));
      return;
    }
    const { kind } = message;
    const content = message.content as MessageContent;
    if (isBridgeCommand(content)) return; // `!irc ...` is for the bridge, never for the channel
    const eventId = event.event_id as string;
    // The room's IRC queue fixes the order in which messages reach each sender's outbox (the
    // lines are prepared inside it: a reply's lookups must not let a later message overtake);
    // delivery then goes on per sender, so one user's slow reconnect does not hold up the others.
    let deliveries: Promise<void>[];
    try {
      deliveries = await this.toIrc.push(
        roomId,
        async () => {
          const pending: Promise<void>[] = [];
          for (const ref of channels) {
            const prepared = await this.prepare(ref, roomId, eventId, sender, kind, content);
            if (prepared) pending.push((await this.enqueueForChannel(roomId, eventId, sender, ref, kind, prepared.lines, prepared.tags, onEventWritten(event))).delivered);
          }
          return pending;
        },
        "matrix_message",
      );
    } catch (err) {
      if (!(err instanceof QueueFullError)) throw err;
      // Counted and logged by the queue; an acknowledged message is never dropped without telling its sender.
      await this.matrix.tellUser(sender, roomId, `your message was not sent to IRC: ${err.message} (the bridge is overloaded); please send it again later.`);
      return;
    }
    await Promise.all(deliveries);
    this.copyToSiblingRooms(roomId, sender, channels, { msgtype: content.msgtype, body: content.body });
  }

  /**
   * A channel linked to several rooms (discouraged, but supported): the other rooms would
   * never see this message, since IRC does not echo it back to the bridge, so it is copied
   * into them by the ghost of the sender's IRC nick.
   */
  private copyToSiblingRooms(roomId: string, sender: string, channels: ChannelRef[], content: Record<string, unknown>): void {
    for (const ref of channels) {
      const nick = this.pools.get(ref.networkId)?.nickOf(sender);
      if (!nick) continue;
      for (const sibling of this.links.roomsOf(ref.networkId, ref.channel)) {
        if (sibling === roomId) continue;
        this.toMatrix
          .push(sibling, () => this.matrix.sendAsIrcUser(ref.networkId, nick, sibling, content))
          .catch((err: Error) => log.warn("Could not copy a message to a sibling room", { roomId: sibling, sender, error: err.message }));
      }
    }
  }

  /** A Matrix user left a linked room, or was kicked or banned from it: their puppet parts. */
  onLeave(roomId: string, userId: string, reason: string): void {
    for (const ref of this.links.channelsOf(roomId)) this.pools.get(ref.networkId)?.part(userId, ref.channelName, reason);
  }

  /** A Matrix user joined a linked room: their puppet joins the channel (first need). */
  async onJoin(roomId: string, userId: string): Promise<void> {
    await Promise.all(
      this.links.channelsOf(roomId).map(async (ref) => {
        const pool = this.pools.get(ref.networkId);
        const network = this.config.networks[ref.networkId];
        if (!pool || !network) return;
        try {
          await pool.join(userId, ref.channelName, this.links.keyOf(ref.networkId, ref.channel));
        } catch (err) {
          const reason = `you could not join ${ref.channelName} on ${network.name}: ${(err as Error).message}`;
          log.warn("Puppet could not join", { roomId, userId, channel: ref.channelName, error: (err as Error).message });
          await this.matrix.tellUser(userId, roomId, reason).catch(() => undefined);
          // Refusals (banned, invite-only, full, bad key) would leave the user in a room whose channel they are not in.
          if (network.membership.removeOnJoinFailure && err instanceof IrcFailure && err.fatal) {
            await this.matrix.removeFromRoom(roomId, userId, reason).catch((e: Error) => log.warn("Could not remove a user who cannot join", { roomId, userId, error: e.message }));
          }
        }
      }),
    );
  }

  /** Queues the lines on the sender's connection; `delivered` settles on delivery (it rejects only with KeepInJournal, when the bridge stops). */
  private async enqueueForChannel(
    roomId: string,
    eventId: string,
    sender: string,
    ref: ChannelRef,
    kind: IrcMessageKind,
    lines: string[],
    tags?: Record<string, string>,
    onFirstWritten?: () => void,
  ): Promise<{ delivered: Promise<void> }> {
    const pool = this.pools.get(ref.networkId);
    const network = this.config.networks[ref.networkId];
    if (!pool || !network) return { delivered: Promise.resolve() };
    const failed = (err: Error) => this.reportFailure(roomId, sender, ref, network.name, err);
    try {
      const channelKey = this.links.keyOf(ref.networkId, ref.channel);
      const { delivered } = await pool.enqueue(sender, { target: ref.channelName, channelKey, kind, lines, onFirstWritten, ...(tags ? { tags } : {}) });
      const linked = (msgids: (string | null)[]) => {
        relayMetrics.relayedToIrc.of(ref.networkId).inc();
        const at = Date.now();
        this.onLinked(msgids.flatMap((msgid) => (msgid ? [{ roomId, eventId, networkId: ref.networkId, msgid, at }] : [])));
      };
      return { delivered: delivered.then(linked, failed) };
    } catch (err) {
      return { delivered: failed(err as Error) };
    }
  }

  private async reportFailure(roomId: string, sender: string, ref: ChannelRef, networkName: string, err: Error): Promise<void> {
    // Shutting down is not a failure of the message: it is handed back to the journal, and
    // goes out after the restart (at-least-once), instead of being reported and dropped.
    if (this.matrix.stopping() && err instanceof IrcFailure && err.code === "stopped") throw new KeepInJournal("the bridge stopped before the message reached IRC");
    metrics.messagesFailed.inc({ direction: "matrix_to_irc", network: ref.networkId });
    if (err instanceof IrcFailure && ["queue_full", "expired", "still_disconnected"].includes(err.code)) {
      metrics.offlineDropped.inc({ network: ref.networkId });
    }
    log.warn("Message not delivered to IRC", { roomId, sender, network: ref.networkId, channel: ref.channelName, error: err.message });
    await this.matrix
      .tellUser(sender, roomId, `your message could not be sent to ${ref.channelName} on ${networkName}: ${err.message}`)
      .catch((e: Error) => log.error("Could not tell the sender about an undelivered message", { roomId, sender, error: e.message }));
  }
}
