/**
 * How the bridge tells one Matrix user something: in their admin room when they have one, else
 * as a notice naming them in the linked room they last used. Connection news (which comes for
 * thousands of users at once after a network outage) goes to admin rooms only, paced and capped.
 */
import PQueue from "p-queue";
import type { Intent } from "matrix-appservice-bridge";
import type { BridgeConfig } from "../config/schema.js";
import { getLogger } from "../logging.js";
import { metrics } from "../metrics/metrics.js";
import { DropLog } from "./DropLog.js";

const log = getLogger("bridge/notices");

/** Connection notices sent to admin rooms per second, across all users. */
const NOTICES_PER_SECOND = 10;

export interface AdminRoomNotifier {
  hasAdminRoom(userId: string): boolean;
  /** Tells the user in their admin room; false when they have none. */
  notify(userId: string, text: string): Promise<boolean>;
}

export class UserNotices {
  /** The last linked room each Matrix user used: where to tell them when they have no admin room. */
  private readonly noticeRooms = new Map<string, string>();
  private readonly pacer = new PQueue({ concurrency: 4, intervalCap: NOTICES_PER_SECOND, interval: 1000 });
  private readonly refused = new DropLog((message, meta) => log.warn(message, meta), "Admin-room notice queue is full: connection notices are dropped");

  constructor(
    private readonly config: BridgeConfig,
    private readonly admin: () => AdminRoomNotifier,
    private readonly bot: () => Intent,
  ) {}

  usedRoom(userId: string, roomId: string): void {
    this.noticeRooms.set(userId, roomId);
  }

  /** Tells a Matrix user something about their IRC connection: in their admin room, else the last linked room they used. */
  notify(userId: string, text: string): void {
    void this.tell(userId, this.noticeRooms.get(userId) ?? null, text).catch((err: Error) => log.warn("Could not tell a user", { userId, error: err.message }));
  }

  /** Connection news: admin rooms only (never shared rooms), paced, and dropped (counted) past the cap. */
  inform(userId: string, text: string): void {
    if (!this.admin().hasAdminRoom(userId)) return;
    if (this.pacer.size + this.pacer.pending >= this.config.queues.noticeMaxDepth) {
      metrics.noticesDropped.inc();
      this.refused.dropped("notices", { userId, waiting: this.pacer.size, cap: this.config.queues.noticeMaxDepth });
      return;
    }
    void this.pacer
      .add(() => this.admin().notify(userId, text))
      .catch((err: Error) => log.warn("Could not tell a user", { userId, error: err.message }))
      .finally(() => metrics.noticeQueueDepth.set(this.pacer.size + this.pacer.pending));
    metrics.noticeQueueDepth.set(this.pacer.size + this.pacer.pending);
  }

  /** In the user's admin room if they have one, else as a notice (naming them) in `roomId`. */
  async tell(userId: string, roomId: string | null, text: string): Promise<void> {
    if (await this.admin().notify(userId, text)) return;
    if (!roomId) return void log.info("No room to tell a user in", { userId, text });
    await this.bot().sendMessage(roomId, { msgtype: "m.notice", body: `${userId}: ${text}` });
  }
}
