/**
 * Typing both ways (IRCv3 `+typing` client tag, where the server relays client tags):
 *
 * - Matrix → IRC: the homeserver pushes `m.typing` (ephemeral, never journalled) with the
 *   room's whole list of typing users. The list is diffed per room; a bridged user who starts
 *   or stops typing, and whose puppet is connected and in the channel, sends `TAGMSG #chan`
 *   with `+typing=active` (repeated, at most once per 3 s: TypingThrottle) then `done`.
 *   Nobody is connected to IRC just to say they type.
 * - IRC → Matrix: `+typing` from an IRC user in a linked channel makes their ghost type in the
 *   rooms, for 6 s (`active`) or 30 s (`paused`) unless renewed (the homeserver's own timeout
 *   expires it), and `done`, or a line from them, stops it. Bounded: one update per ghost per
 *   room per 3 s whatever the state (a `done` once, only after a `true`), a per-network budget,
 *   and only ghosts known to be in the room (typing never makes a ghost join).
 */
import type { BridgeConfig } from "../config/schema.js";
import type { IrcTagMessage } from "../irc/IrcConnection.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import type { Ghosts } from "../matrix/Ghosts.js";
import type { MatrixEvent } from "../matrix/DurableAppService.js";
import { metrics } from "../metrics/metrics.js";
import { readTyping, type TypingState } from "./ircv3Tags.js";
import { RateLimiter, type RateLimit } from "./RateLimiter.js";
import type { RoomLinks } from "./RoomLinks.js";
import { TypingThrottle } from "./TypingThrottle.js";

const log = getLogger("bridge/typing");

/** How long a ghost shows as typing after IRC said `active` / `paused` (the IRCv3 typing spec's expiries). */
export const ACTIVE_EXPIRES_MS = 6_000;
export const PAUSED_EXPIRES_MS = 30_000;

/**
 * A ghost's typing reaches Matrix (each a federated EDU) at most once per this per room,
 * whatever the state: IRC clients may alternate active/paused/done freely. A `done` after a
 * `true` that was sent goes at once, and once.
 */
const RENEW_MS = 3_000;
/** Typing updates to Matrix per network (IRC users are many; the homeserver and its federation are one). */
export const TYPING_TO_MATRIX_LIMIT: RateLimit = { burst: 20, perMinute: 120 };

interface Shown {
  state: TypingState;
  /** When a typing update was last sent to Matrix. */
  at: number;
  /** Whether the last update sent was `true` (a `done` has something to stop). */
  showing: boolean;
}

/** Whether the entry still matters: showing and not expired, or its renew window still open. */
const isLive = (shown: Shown, now: number) => now - shown.at < (!shown.showing ? RENEW_MS : shown.state === "active" ? ACTIVE_EXPIRES_MS : PAUSED_EXPIRES_MS);

interface Target {
  networkId: string;
  userId: string;
  channelName: string;
}

export class Typing {
  /** Each linked room's typing users (Matrix users only), as the last m.typing said. */
  private readonly typingIn = new Map<string, Set<string>>();
  /** Ghosts shown typing, per room, so a line from them (or `done`) stops it; expired ones are pruned. */
  private readonly ghostsTyping = new Map<string, Map<string, Shown>>();
  private readonly throttle = new TypingThrottle<Target>((target, state) => this.sendToIrc(target, state));

  constructor(
    private readonly config: BridgeConfig,
    private readonly links: RoomLinks,
    private readonly pools: Map<string, NetworkPool>,
    private readonly ghosts: Pick<Ghosts, "userIdFor" | "intentFor" | "isKnownIn">,
    /** Whether a Matrix user's typing may be bridged (a real user allowed to use the bridge). */
    private readonly bridgesUser: (userId: string) => boolean,
    limit: RateLimit = TYPING_TO_MATRIX_LIMIT,
    private readonly now: () => number = Date.now,
  ) {
    this.toMatrixLimit = new RateLimiter(limit, 1_000, now);
  }

  private readonly toMatrixLimit: RateLimiter;
  /** Per room and ghost: a typing change that came within the renew window, sent when it opens. */
  private readonly deferred = new Map<string, NodeJS.Timeout>();

  attach(pool: NetworkPool): void {
    pool.on("tagmsg", (m) => this.onIrcTags(pool, m));
    pool.on("channelLine", (line) => {
      if (!pool.isOwnNick(line.nick)) this.onIrcTyping(pool, line.nick, line.target, "done", true);
    });
  }

  /** An ephemeral event from the homeserver: `m.typing` of a linked room is bridged, the rest ignored. */
  onEphemeral(event: MatrixEvent): void {
    if (event.type !== "m.typing" || typeof event.room_id !== "string") return;
    const roomId = event.room_id;
    const channels = this.links.channelsOf(roomId);
    if (channels.length === 0) return;
    const listed = (event.content as { user_ids?: unknown } | undefined)?.user_ids;
    const now = new Set((Array.isArray(listed) ? listed : []).filter((u): u is string => typeof u === "string" && this.bridgesUser(u)));
    const before = this.typingIn.get(roomId) ?? new Set<string>();
    if (now.size > 0) this.typingIn.set(roomId, now);
    else this.typingIn.delete(roomId);
    for (const userId of now) if (!before.has(userId)) this.setMatrixTyping(roomId, userId, "active");
    for (const userId of before) if (!now.has(userId)) this.setMatrixTyping(roomId, userId, "done");
  }

  /** Stops every repeat (shutdown). */
  stop(): void {
    this.throttle.clear();
    for (const timer of this.deferred.values()) clearTimeout(timer);
    this.deferred.clear();
  }

  private setMatrixTyping(roomId: string, userId: string, state: TypingState): void {
    for (const ref of this.links.channelsOf(roomId)) {
      if (!this.config.networks[ref.networkId]?.ircv3.typing) continue;
      // The key is the user and the channel: one typing state per target, whichever room it came from.
      this.throttle.set(`${ref.networkId}\0${userId}\0${ref.channel}`, state, { networkId: ref.networkId, userId, channelName: ref.channelName });
    }
  }

  private sendToIrc(target: Target, state: TypingState): void {
    const connection = this.pools.get(target.networkId)?.connectionOf(target.userId);
    if (!connection?.isJoined(target.channelName)) return;
    connection
      .sendTags(target.channelName, { "+typing": state })
      .then((sent) => sent && metrics.ircv3Interactions.inc({ kind: "typing", direction: "matrix_to_irc" }))
      .catch((err: Error) => log.debug("Could not send typing to IRC", { network: target.networkId, userId: target.userId, error: err.message }));
  }

  private onIrcTags(pool: NetworkPool, m: IrcTagMessage): void {
    const state = readTyping(m.tags);
    if (state && !pool.isOwnNick(m.nick)) this.onIrcTyping(pool, m.nick, m.target, state, false);
  }

  private onIrcTyping(pool: NetworkPool, nick: string, target: string, state: TypingState, fromLine: boolean): void {
    if (fromLine && this.ghostsTyping.size === 0) return; // the common case, once per IRC line
    const network = this.config.networks[pool.networkId];
    const rooms = network?.ircv3.typing ? this.links.roomsOf(pool.networkId, pool.bot.casefold(target)) : [];
    if (rooms.length === 0) return;
    const userId = this.ghosts.userIdFor(network, nick, pool.bot.caseMapping);
    const now = this.now();
    for (const roomId of rooms) {
      const typing = this.ghostsTyping.get(roomId) ?? new Map<string, Shown>();
      for (const [id, shown] of typing) if (!isLive(shown, now)) typing.delete(id);
      const shown = typing.get(userId);
      const key = `${roomId}\0${userId}`;
      const send = state === "done" ? this.stopping(key, shown, now) : this.starting(pool, roomId, userId, shown, now);
      // A change within the window is sent when it opens (the latest one; a done cancels it).
      if (!send && state !== "done" && shown && now - shown.at < RENEW_MS && (!shown.showing || shown.state !== state)) {
        this.defer(key, shown.at + RENEW_MS - now, () => this.onIrcTyping(pool, nick, target, state, false));
      }
      if (send && state !== "done") typing.set(userId, { state, at: now, showing: true });
      if (typing.size > 0) this.ghostsTyping.set(roomId, typing);
      else this.ghostsTyping.delete(roomId);
      if (!send) continue;
      void this.setGhostTyping(pool, nick, roomId, state).catch((err: Error) =>
        log.debug("Could not show an IRC user typing", { network: pool.networkId, nick, roomId, error: err.message }),
      );
    }
  }

  /** A `done`: sent only to stop a `true` that was sent, once (not counted against the budget: each follows one that was). */
  private stopping(key: string, shown: Shown | undefined, now: number): boolean {
    this.cancelDeferred(key);
    if (!shown?.showing) return false; // nothing shown (or expired, or stopped already)
    shown.showing = false;
    shown.at = now;
    return true;
  }

  private defer(key: string, ms: number, run: () => void): void {
    this.cancelDeferred(key);
    const timer = setTimeout(() => {
      this.deferred.delete(key);
      run();
    }, ms);
    timer.unref();
    this.deferred.set(key, timer);
  }

  private cancelDeferred(key: string): void {
    const timer = this.deferred.get(key);
    if (timer) clearTimeout(timer);
    this.deferred.delete(key);
  }

  /**
   * `active`/`paused`: one update per RENEW_MS whatever the state; a ghost not known to be in
   * the room is never joined just to show typing; the network's budget bounds them all.
   */
  private starting(pool: NetworkPool, roomId: string, userId: string, shown: Shown | undefined, now: number): boolean {
    if (shown && now - shown.at < RENEW_MS) return false;
    return this.ghosts.isKnownIn(roomId, userId) && this.toMatrixLimit.take(pool.networkId);
  }

  private async setGhostTyping(pool: NetworkPool, nick: string, roomId: string, state: TypingState): Promise<void> {
    const intent = await this.ghosts.intentFor(pool.networkId, this.config.networks[pool.networkId], nick, pool.bot.caseMapping);
    // The homeserver's own timeout is the expiry: a client that stops saying `active` stops showing.
    if (state === "done") await intent.matrixClient.setTyping(roomId, false);
    else await intent.matrixClient.setTyping(roomId, true, state === "active" ? ACTIVE_EXPIRES_MS : PAUSED_EXPIRES_MS);
    metrics.ircv3Interactions.inc({ kind: "typing", direction: "irc_to_matrix" });
  }
}
