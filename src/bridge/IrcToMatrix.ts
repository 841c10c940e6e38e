/**
 * IRC → Matrix: each line of a linked channel (once, from the pool's broker) is sent into every
 * room of that channel by the speaker's ghost, one ordered queue per room. A slow or briefly
 * unreachable homeserver delays the queue (with retries) instead of dropping lines.
 */
import type { BridgeConfig } from "../config/schema.js";
import { stripIrcFormatting } from "../format/ircText.js";
import type { IrcMessage, IrcMessageKind } from "../irc/IrcConnection.js";
import type { MembershipChange } from "../irc/ChannelRoster.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import type { Ghosts } from "../matrix/Ghosts.js";
import { withRetry } from "../matrix/retry.js";
import { metrics } from "../metrics/metrics.js";
import type { MessageLink } from "../store/DataStore.js";
import type { KeyedQueue } from "./KeyedQueue.js";
import type { RoomLinks } from "./RoomLinks.js";

const log = getLogger("bridge/irc-to-matrix");

const MSGTYPES: Record<IrcMessageKind, string> = { privmsg: "m.text", notice: "m.notice", action: "m.emote" };
/** How long a line keeps being retried while the homeserver is failing, before it is logged as lost. */
const GIVE_UP_AFTER_MS = 30 * 60_000;

export class IrcToMatrix {
  /** Where Matrix event ID ↔ IRC msgid pairs go once a line is in Matrix. */
  onLinked: (links: MessageLink[]) => void = () => undefined;

  constructor(
    private readonly config: BridgeConfig,
    private readonly links: RoomLinks,
    private readonly ghosts: Ghosts,
    private readonly roomQueue: KeyedQueue,
  ) {}

  /** Ghosts this process has put in each room (room → user IDs), so only they are taken out again. */
  private readonly ghostsInRoom = new Map<string, Set<string>>();

  attach(pool: NetworkPool): void {
    pool.on("channelLine", (msg) => this.onChannelLine(pool, msg));
    pool.on("membership", (change) => this.onMembership(pool, change));
  }

  /** IRC JOIN/PART/KICK/QUIT/NICK move the ghosts, in the room's order with the messages. */
  private onMembership(pool: NetworkPool, change: MembershipChange): void {
    const network = this.config.networks[pool.networkId];
    const rooms = this.links.roomsOf(pool.networkId, pool.bot.casefold(change.channel));
    const join = (roomId: string, nick: string) => async () => {
      if (pool.isOwnNick(nick)) return;
      const intent = await this.ghosts.intentFor(pool.networkId, network, nick, pool.bot.caseMapping);
      await withRetry(() => intent.join(roomId), { giveUpAfterMs: GIVE_UP_AFTER_MS });
      this.tracked(roomId).add(intent.userId);
    };
    const leave = (roomId: string, nick: string, reason: string) => async () => {
      const userId = this.ghosts.userIdFor(network, nick, pool.bot.caseMapping);
      if (!this.tracked(roomId).delete(userId)) return; // not a ghost this bridge put there
      const intent = await this.ghosts.intentFor(pool.networkId, network, nick, pool.bot.caseMapping);
      await withRetry(() => intent.leave(roomId, reason), { giveUpAfterMs: GIVE_UP_AFTER_MS });
    };
    for (const roomId of rooms) {
      const jobs =
        change.type === "join"
          ? [join(roomId, change.nick)]
          : change.type === "leave"
            ? [leave(roomId, change.nick, change.reason)]
            : [leave(roomId, change.oldNick, `changed nick to ${change.newNick}`), join(roomId, change.newNick)];
      for (const job of jobs) {
        this.roomQueue.push(roomId, job).catch((err: Error) =>
          log.warn("Membership change not mirrored in Matrix", { network: pool.networkId, roomId, change: change.type, error: err.message }),
        );
      }
    }
  }

  private tracked(roomId: string): Set<string> {
    let set = this.ghostsInRoom.get(roomId);
    if (!set) this.ghostsInRoom.set(roomId, (set = new Set()));
    return set;
  }

  private onChannelLine(pool: NetworkPool, msg: IrcMessage): void {
    if (pool.isOwnNick(msg.nick)) return;
    const rooms = this.links.roomsOf(pool.networkId, pool.bot.casefold(msg.target));
    for (const roomId of rooms) {
      this.roomQueue
        .push(roomId, () => this.deliver(pool, roomId, msg))
        .catch((err: Error) => {
          metrics.messagesFailed.inc({ direction: "irc_to_matrix", network: pool.networkId });
          log.error("Line from IRC could not be delivered to Matrix", { network: pool.networkId, channel: msg.target, nick: msg.nick, roomId, error: err.message });
        });
    }
  }

  private async deliver(pool: NetworkPool, roomId: string, msg: IrcMessage): Promise<void> {
    const network = this.config.networks[pool.networkId];
    const content = { msgtype: MSGTYPES[msg.kind], body: stripIrcFormatting(msg.text) };
    const { event_id: eventId } = await withRetry(
      async () => {
        const intent = await this.ghosts.intentFor(pool.networkId, network, msg.nick, pool.bot.caseMapping);
        const sent = await intent.sendMessage(roomId, content);
        this.tracked(roomId).add(intent.userId);
        return sent;
      },
      {
        giveUpAfterMs: GIVE_UP_AFTER_MS,
        onRetry: (err, attempt, delayMs) => log.warn("Homeserver refused a line; retrying", { roomId, attempt, delayMs, error: (err as Error).message }),
      },
    );
    metrics.messagesRelayed.inc({ direction: "irc_to_matrix", network: pool.networkId });
    if (msg.tags.msgid) this.onLinked([{ roomId, eventId, networkId: pool.networkId, msgid: msg.tags.msgid, at: Date.now() }]);
    metrics.ircToMatrixLatency.observe((Date.now() - msg.receivedAt) / 1000);
  }
}
