/**
 * Matrix → IRC: a Matrix user's text, notice or emote in a linked room goes out over that
 * user's own IRC connection (opened and joined on first need), one line per line of the
 * body, in the room's order. When it cannot be delivered the sender is told in the room.
 */
import type { BridgeConfig } from "../config/schema.js";
import { toIrcLines } from "../format/lines.js";
import type { IrcMessageKind } from "../irc/IrcConnection.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import type { MatrixEvent } from "../matrix/DurableAppService.js";
import { metrics } from "../metrics/metrics.js";
import type { KeyedQueue } from "./KeyedQueue.js";
import type { ChannelRef, RoomLinks } from "./RoomLinks.js";

const log = getLogger("bridge/matrix-to-irc");

const KINDS: Record<string, IrcMessageKind> = { "m.text": "privmsg", "m.notice": "notice", "m.emote": "action" };

export interface MatrixSide {
  /** Posts an m.notice from the bridge bot into a room. */
  notice(roomId: string, text: string): Promise<void>;
  displayNameOf(userId: string): Promise<string | null>;
}

interface MessageContent {
  msgtype?: unknown;
  body?: unknown;
}

export class MatrixToIrc {
  constructor(
    private readonly config: BridgeConfig,
    private readonly links: RoomLinks,
    private readonly pools: Map<string, NetworkPool>,
    private readonly roomQueue: KeyedQueue,
    private readonly matrix: MatrixSide,
  ) {}

  /** Handles one m.room.message from a real Matrix user; resolves once it is on IRC or refused. */
  async onMessage(event: MatrixEvent): Promise<void> {
    const roomId = event.room_id as string;
    const sender = event.sender as string;
    const channels = this.links.channelsOf(roomId);
    if (channels.length === 0) return;
    const content = (event.content ?? {}) as MessageContent;
    const kind = KINDS[String(content.msgtype)];
    if (!kind || typeof content.body !== "string") {
      await this.roomQueue.push(roomId, () =>
        this.matrix.notice(roomId, `${sender}: messages of type ${String(content.msgtype)} are not bridged to IRC yet; it was not sent.`),
      );
      return;
    }
    const lines = toIrcLines(content.body);
    if (lines.length === 0) return;
    await this.roomQueue.push(roomId, async () => {
      for (const ref of channels) await this.sendToChannel(roomId, sender, ref, kind, lines);
    });
  }

  private async sendToChannel(roomId: string, sender: string, ref: ChannelRef, kind: IrcMessageKind, lines: string[]): Promise<void> {
    const pool = this.pools.get(ref.networkId);
    const network = this.config.networks[ref.networkId];
    if (!pool || !network) return;
    try {
      const displayName = network.puppetNickTemplate.includes("$DISPLAY") ? await this.matrix.displayNameOf(sender) : null;
      const puppet = await pool.getPuppet(sender, displayName);
      await puppet.join(ref.channelName, this.links.keyOf(ref.networkId, ref.channel));
      for (const line of lines) await puppet.send(kind, ref.channelName, line);
      metrics.messagesRelayed.inc({ direction: "matrix_to_irc", network: ref.networkId });
    } catch (err) {
      metrics.messagesFailed.inc({ direction: "matrix_to_irc", network: ref.networkId });
      const reason = (err as Error).message;
      log.warn("Message not delivered to IRC", { roomId, sender, network: ref.networkId, channel: ref.channelName, error: reason });
      await this.matrix
        .notice(roomId, `${sender}: your message could not be sent to ${ref.channelName} on ${network.name}: ${reason}`)
        .catch((e: Error) => log.error("Could not tell the sender about an undelivered message", { roomId, sender, error: e.message }));
    }
  }
}
