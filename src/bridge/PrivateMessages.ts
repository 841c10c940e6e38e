/**
 * Private messages both ways, in invite-only rooms of one Matrix user and one IRC user's
 * ghost. An IRC user messaging a Matrix user's nick: the ghost opens a room and invites the
 * user (or invites them back into the old one if they left it; a fresh room if that fails),
 * so nothing is ever sent into a room the user is not in or invited to. A Matrix user
 * inviting a ghost to a room: the ghost joins, and that room is their PM with that nick.
 *
 * Bounded under abuse: new PM rooms are rate-limited per IRC nick and per Matrix user (a
 * refused IRC sender gets one NOTICE per minute); a user who left their PM room is invited
 * back at most once per `reinviteAfterMs`, and PMs in between are dropped (counted, logged,
 * the sender told once per period); nicks a user `!ignore`s never open or reach a room.
 */
import type { Intent } from "matrix-appservice-bridge";
import type { BridgeConfig } from "../config/schema.js";
import { ircContent } from "../format/ircContent.js";
import { ircLinesOf } from "../format/matrixContent.js";
import { ircMessageOf, MSGTYPE_OF_KIND, type MediaLinker } from "../format/msgtypes.js";
import type { IrcMessage } from "../irc/IrcConnection.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import { KeepInJournal, type MatrixEvent } from "../matrix/DurableAppService.js";
import { IrcFailure } from "../irc/errors.js";
import type { Ghosts } from "../matrix/Ghosts.js";
import { withRetry } from "../matrix/retry.js";
import { newTxnId, sendEventAt } from "../matrix/sendAt.js";
import { metrics } from "../metrics/metrics.js";
import type { DataStore, PmRoom } from "../store/DataStore.js";
import { GIVE_UP_AFTER_MS } from "./IrcToMatrix.js";
import type { KeyedQueue } from "./KeyedQueue.js";
import { RateLimiter } from "./RateLimiter.js";

const log = getLogger("bridge/pms");
/** An IRC nick refused for PMing too fast hears so at most once per this long. */
const TELL_RATE_LIMITED_EVERY_MS = 60_000;

export interface PmHooks {
  /** Whether the user ignores this nick on this network (`!ignore`). */
  isIgnored(userId: string, networkId: string, nick: string): boolean;
  /** Tells a Matrix user something in their admin room; false when they have none. */
  tellUser(userId: string, text: string): Promise<boolean>;
  /** True once the bridge is shutting down: what cannot go now stays in the journal. */
  stopping(): boolean;
  /** Whether a Matrix user wants IRC lines that say their nick to mention them (as in channels). */
  wantsMentions?(userId: string): boolean;
  /** The lines (and tags) a Matrix message becomes on IRC, as in channels (OutgoingText); without it, its text alone. */
  linesFor?(networkId: string, roomId: string, eventId: string, sender: string, content: Record<string, unknown>): Promise<{ lines: string[]; tags?: Record<string, string> } | null>;
  /** Links to files the bridge serves (as in channels); without it, files are refused with a notice. */
  media?: MediaLinker | null;
}

/** A PM from IRC that is not delivered on purpose; `notice` is what the IRC sender is told. */
class PmRefused extends Error {
  constructor(
    readonly reason: "rate_limited" | "not_in_room",
    readonly notice: string,
    readonly tellKey: string,
    readonly tellEveryMs: number,
  ) {
    super(notice);
  }
}

export class PrivateMessages {
  private readonly limiters = new Map<string, RateLimiter>();
  /** When each refused sender was last told (only its `shouldTell` is used). */
  private readonly told = new RateLimiter({ burst: 1, perMinute: 1 });

  constructor(
    private readonly config: BridgeConfig,
    private readonly store: DataStore,
    private readonly pools: Map<string, NetworkPool>,
    private readonly ghosts: Ghosts,
    private readonly queue: KeyedQueue,
    private readonly hooks: PmHooks,
  ) {}

  /** Spends a new PM room from the nick's and the user's buckets; the milliseconds to wait when refused, else 0. */
  private charge(pool: NetworkPool, userId: string, nick: string): number {
    let limiter = this.limiters.get(pool.networkId);
    if (!limiter) {
      limiter = new RateLimiter(pool.config.privateMessages.rateLimit);
      this.limiters.set(pool.networkId, limiter);
    }
    const keys = [`nick\u0000${pool.bot.casefold(nick)}`, `user\u0000${userId}`];
    if (limiter.take(...keys)) return 0;
    metrics.rateLimited.inc({ kind: "pm_room", network: pool.networkId });
    return Math.max(1000, limiter.retryAfterMs(...keys));
  }

  attach(pool: NetworkPool): void {
    if (!pool.config.privateMessages.enabled) return;
    pool.on("privateLine", (userId, msg) => {
      const key = `pm\u0000${userId}\u0000${pool.networkId}\u0000${pool.bot.casefold(msg.nick)}`;
      this.queue
        .push(key, () => this.deliver(pool, userId, msg))
        .catch((err: Error) => {
          metrics.messagesFailed.inc({ direction: "irc_to_matrix", network: pool.networkId });
          log.error("Private message from IRC not delivered to Matrix", { network: pool.networkId, from: msg.nick, userId, error: err.message });
        });
    });
  }

  /** The ghost of a nick; `exact` when the nick is as IRC writes it (else it may be casefolded, and the ghost's name is kept). */
  private ghostFor(pool: NetworkPool, nick: string, exact = true): Promise<Intent> {
    return this.ghosts.intentFor(pool.networkId, pool.config, nick, pool.bot.caseMapping, !exact);
  }

  private async deliver(pool: NetworkPool, userId: string, msg: IrcMessage): Promise<void> {
    if (this.hooks.isIgnored(userId, pool.networkId, msg.nick)) {
      metrics.pmsDropped.inc({ reason: "ignored", network: pool.networkId });
      log.debug("Private message from an ignored nick dropped", { network: pool.networkId, from: msg.nick, userId });
      return;
    }
    const ghost = await this.ghostFor(pool, msg.nick);
    let roomId: string;
    try {
      roomId = await this.roomWithUser(pool, ghost, userId, msg.nick);
    } catch (err) {
      if (err instanceof PmRefused) return this.refused(pool, userId, msg.nick, err);
      throw err;
    }
    // The same content builder as channels: formatting as HTML, the user's nick as a mention.
    const content = ircContent(MSGTYPE_OF_KIND[msg.kind], msg.text, (nick) => {
      const mentioned = pool.userIdOfNick(nick);
      return mentioned === userId && (this.hooks.wantsMentions?.(userId) ?? true) ? userId : null;
    });
    const txnId = newTxnId();
    await withRetry(() => sendEventAt(ghost, roomId, "m.room.message", content, msg.time, txnId), { giveUpAfterMs: GIVE_UP_AFTER_MS });
    metrics.messagesRelayed.inc({ direction: "irc_to_matrix", network: pool.networkId });
  }

  /** Counts and logs a PM not delivered on purpose; the IRC sender hears why, once per period. */
  private async refused(pool: NetworkPool, userId: string, nick: string, refusal: PmRefused): Promise<void> {
    metrics.pmsDropped.inc({ reason: refusal.reason, network: pool.networkId });
    log.info("Private message from IRC not delivered", { network: pool.networkId, from: nick, userId, reason: refusal.reason });
    if (!this.told.shouldTell(refusal.tellKey, refusal.tellEveryMs)) return;
    const { delivered } = await pool.enqueue(userId, { target: nick, channelKey: null, kind: "notice", lines: [refusal.notice] });
    await delivered.catch((err: Error) => log.info("Could not tell an IRC user why their PM was not delivered", { network: pool.networkId, nick, error: err.message }));
  }

  /** The PM room where the user is joined or invited: the stored one (inviting them back), or a new one. */
  private async roomWithUser(pool: NetworkPool, ghost: Intent, userId: string, nick: string): Promise<string> {
    const folded = pool.bot.casefold(nick);
    const stored = await this.store.getPmRoom(userId, pool.networkId, folded);
    if (stored) {
      const member = (await ghost.getStateEvent(stored.roomId, "m.room.member", userId, true).catch(() => null)) as { membership?: string } | null;
      if (member?.membership === "join" || member?.membership === "invite") return stored.roomId;
      const period = pool.config.privateMessages.reinviteAfterMs;
      if (stored.reinvitedAt && Date.now() - stored.reinvitedAt < period) {
        const notice = "[bridge] The Matrix user left this private chat and is not reading it now; your message was not delivered.";
        throw new PmRefused("not_in_room", notice, `left\u0000${pool.networkId}\u0000${userId}\u0000${folded}`, period);
      }
      try {
        await ghost.invite(stored.roomId, userId);
        await this.store.setPmRoom({ ...stored, reinvitedAt: Date.now() });
        log.info("Invited a user back into their PM room", { roomId: stored.roomId, userId, nick });
        return stored.roomId;
      } catch (err) {
        log.info("Could not invite a user back into their PM room; opening a new one", { roomId: stored.roomId, userId, error: (err as Error).message });
      }
    }
    const waitMs = this.charge(pool, userId, nick);
    if (waitMs > 0) {
      const notice = `[bridge] You are opening private chats with Matrix users too fast; your message was not delivered. Try again in ${Math.ceil(waitMs / 1000)} s.`;
      throw new PmRefused("rate_limited", notice, `fast\u0000${pool.networkId}\u0000${folded}`, TELL_RATE_LIMITED_EVERY_MS);
    }
    const { room_id: roomId } = await ghost.createRoom({
      createAsClient: true,
      options: {
        // Invite-only, and the Matrix user gets the same power as the ghost.
        preset: "trusted_private_chat",
        is_direct: true,
        visibility: "private",
        invite: [userId],
        creation_content: { "m.federate": pool.config.privateMessages.federate },
      },
    });
    await this.store.setPmRoom({ roomId, userId, networkId: pool.networkId, nick: folded, nickName: nick });
    log.info("Opened a PM room", { network: pool.networkId, nick, userId, roomId });
    return roomId;
  }

  /** A Matrix user invited a ghost: the ghost joins, and the room becomes their PM room. */
  async onGhostInvited(roomId: string, inviter: string, ghostUserId: string): Promise<void> {
    const ghost = this.ghosts.parse(ghostUserId);
    const pool = ghost && this.pools.get(ghost.networkId);
    if (!ghost || !pool) return;
    if (!pool.config.privateMessages.enabled) {
      const intent = await this.ghostFor(pool, ghost.nick, false);
      await intent.leave(roomId, `Private messages are not bridged to ${pool.config.name}`).catch(() => undefined);
      return;
    }
    const waitMs = this.charge(pool, inviter, ghost.nick);
    if (waitMs > 0) {
      const why = `You are opening private chats too fast; try again in ${Math.ceil(waitMs / 1000)} s.`;
      log.info("A PM room from Matrix refused: rate limit", { network: ghost.networkId, nick: ghost.nick, userId: inviter, roomId });
      const intent = await this.ghostFor(pool, ghost.nick, false);
      await intent.leave(roomId, why).catch(() => undefined);
      await this.hooks.tellUser(inviter, `${ghost.nick} on ${pool.config.name} did not join your chat: ${why}`).catch(() => false);
      return;
    }
    // WHOIS first: it gives the nick as IRC writes it, for the ghost's name.
    const online = await this.lookUp(pool, ghost.nick);
    const intent = await this.ghostFor(pool, online?.nick ?? ghost.nick, Boolean(online));
    await withRetry(() => intent.join(roomId), { giveUpAfterMs: GIVE_UP_AFTER_MS });
    await this.store.setPmRoom({ roomId, userId: inviter, networkId: ghost.networkId, nick: ghost.nick, nickName: online?.nick ?? null });
    log.info("A Matrix user opened a PM with an IRC nick", { network: ghost.networkId, nick: ghost.nick, userId: inviter, roomId });
    if (online === null) {
      await intent.sendMessage(roomId, { msgtype: "m.notice", body: `${ghost.nick} is not on ${pool.config.name} right now; messages sent here will not reach them until they are.` });
    }
  }

  /** WHOIS: the nick as IRC writes it, null when not on IRC, undefined when the bridge cannot tell. */
  private async lookUp(pool: NetworkPool, nick: string): Promise<{ nick: string } | null | undefined> {
    try {
      await pool.bot.whenConnected(pool.config.connectTimeoutMs);
      return await pool.bot.commands.whois(nick);
    } catch {
      return undefined;
    }
  }

  /** The PM room record for a room, if it is one. */
  pmRoomOf(roomId: string): Promise<PmRoom | null> {
    return this.store.getPmRoomById(roomId);
  }

  /** A Matrix message in a PM room goes to the nick over the sender's connection. */
  async onMatrixMessage(event: MatrixEvent, pm: PmRoom): Promise<void> {
    const pool = this.pools.get(pm.networkId);
    const network = this.config.networks[pm.networkId];
    if (!pool || !network) return;
    const roomId = pm.roomId;
    const sender = event.sender as string;
    // The ghost is needed only to answer in the room: the line to IRC never waits on the homeserver.
    const tell = async (text: string) => {
      const ghost = await this.ghostFor(pool, pm.nickName ?? pm.nick, pm.nickName !== null);
      await ghost.sendMessage(roomId, { msgtype: "m.notice", body: text });
    };
    const nick = pm.nickName ?? pm.nick;
    if (sender !== pm.userId) return tell(`${sender}: only ${pm.userId}'s messages in this room reach ${nick} on IRC.`);
    const message = ircMessageOf(event, this.hooks.media ?? null);
    if ("refused" in message) return tell(message.refused.charAt(0).toUpperCase() + message.refused.slice(1));
    const { kind } = message;
    const content = message.content as { msgtype?: unknown; body?: unknown; format?: unknown; formatted_body?: unknown };
    const prepared = this.hooks.linesFor
      ? await this.hooks.linesFor(pm.networkId, roomId, event.event_id as string, sender, content as Record<string, unknown>)
      : { lines: ircLinesOf(content, (userId) => pool.nickOf(userId)) };
    if (!prepared || prepared.lines.length === 0) return;
    const { lines, tags } = prepared;
    try {
      const { delivered } = await pool.enqueue(sender, { target: nick, channelKey: null, kind, lines, ...(tags ? { tags } : {}) });
      await delivered;
      metrics.messagesRelayed.inc({ direction: "matrix_to_irc", network: pm.networkId });
    } catch (err) {
      // Shutting down: the message stays in the journal and goes out after the restart.
      if (this.hooks.stopping() && err instanceof IrcFailure && err.code === "stopped") throw new KeepInJournal("the bridge stopped before the message reached IRC");
      metrics.messagesFailed.inc({ direction: "matrix_to_irc", network: pm.networkId });
      log.info("Private message not delivered to IRC", { roomId, sender, nick, error: (err as Error).message });
      await tell(`Your message was not delivered to ${nick}: ${(err as Error).message}`);
    }
  }
}
