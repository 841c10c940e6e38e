/**
 * Channel topics both ways. A TOPIC on IRC becomes the rooms' m.room.topic, set by the
 * setter's ghost where it may (so Matrix shows who set it), else by the bridge bot. A Matrix
 * user changing a linked room's topic sets it on IRC over their own connection; if IRC
 * refuses (not a channel operator on a +t channel), the room gets the old topic back and the
 * user is told why. IRC is where the channel's topic lives (but a room plumbed by its own
 * moderators keeps the topic they set, and the user is still told IRC's answer).
 */
import type { Intent } from "matrix-appservice-bridge";
import type { BridgeConfig } from "../config/schema.js";
import { stripIrcFormatting } from "../format/ircText.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import type { MatrixEvent } from "../matrix/DurableAppService.js";
import type { Ghosts } from "../matrix/Ghosts.js";
import { withRetry } from "../matrix/retry.js";
import { GIVE_UP_AFTER_MS } from "./IrcToMatrix.js";
import type { KeyedQueue } from "./KeyedQueue.js";
import type { RoomLinks } from "./RoomLinks.js";
import { readStateEvent } from "../matrix/readState.js";

const log = getLogger("bridge/topics");

export interface TopicSides {
  bot(): Intent;
  notice(roomId: string, text: string): Promise<void>;
}

export class TopicSync {
  constructor(
    private readonly config: BridgeConfig,
    private readonly links: RoomLinks,
    private readonly pools: Map<string, NetworkPool>,
    private readonly ghosts: Ghosts,
    private readonly roomQueue: KeyedQueue,
    private readonly matrix: TopicSides,
  ) {}

  attach(pool: NetworkPool): void {
    pool.on("topic", ({ channel, topic, nick }) => {
      for (const roomId of this.links.roomsOf(pool.networkId, pool.bot.casefold(channel))) {
        this.roomQueue
          .push(roomId, () => this.setRoomTopic(pool, roomId, stripIrcFormatting(topic), nick))
          .catch((err: Error) => log.warn("Topic from IRC not set in Matrix", { roomId, channel, error: err.message }));
      }
    });
  }

  private async setRoomTopic(pool: NetworkPool, roomId: string, topic: string, setter: string): Promise<void> {
    const bot = this.matrix.bot();
    const current = await readStateEvent<{ topic?: string }>(bot, roomId, "m.room.topic");
    if ((current?.topic ?? "") === topic) return; // the change came from this room
    const ghost = await this.ghosts.intentFor(pool.networkId, pool.config, setter, pool.bot.caseMapping);
    try {
      await withRetry(() => ghost.setRoomTopic(roomId, topic), { giveUpAfterMs: GIVE_UP_AFTER_MS });
    } catch (err) {
      log.info("The setter's ghost may not set the topic; the bot sets it", { roomId, setter, error: (err as Error).message });
      await withRetry(() => bot.setRoomTopic(roomId, topic), { giveUpAfterMs: GIVE_UP_AFTER_MS });
    }
  }

  /** A Matrix user changed a linked room's topic. */
  async onMatrixTopic(event: MatrixEvent): Promise<void> {
    const roomId = event.room_id as string;
    const sender = event.sender as string;
    const topic = String((event.content as { topic?: unknown } | undefined)?.topic ?? "").replace(/[\r\n\0]+/g, " ").trim();
    const previous = String((event.unsigned as { prev_content?: { topic?: unknown } } | undefined)?.prev_content?.topic ?? "");
    for (const ref of this.links.channelsOf(roomId)) {
      const pool = this.pools.get(ref.networkId);
      const network = this.config.networks[ref.networkId];
      if (!pool || !network) continue;
      try {
        await pool.setTopic(sender, ref.channelName, this.links.keyOf(ref.networkId, ref.channel), topic);
      } catch (err) {
        log.info("IRC refused a topic from Matrix", { roomId, sender, channel: ref.channelName, error: (err as Error).message, putBack: !this.links.isPlumbed(roomId) });
        // A room plumbed by its moderators keeps the topic they set; elsewhere IRC's topic is the room's.
        if (!this.links.isPlumbed(roomId)) await this.matrix.bot().setRoomTopic(roomId, previous).catch((e: Error) => log.warn("Could not put the old topic back", { roomId, error: e.message }));
        await this.matrix
          .notice(roomId, `${sender}: the topic of ${ref.channelName} on ${network.name} was not changed: ${(err as Error).message}`)
          .catch(() => undefined);
      }
    }
  }
}
