/**
 * The bridge bot kicked from a channel comes back: it rejoins with jittered exponential
 * backoff while the channel is still bridged, because while it is out, the channel's lines
 * reach Matrix only if some puppet happens to be there. When IRC refuses it for good (banned,
 * invite-only, a key it does not have), it stays out and says so: in the log, in a metric,
 * and through `onExcluded` (the users there are told).
 */
import { getLogger } from "../logging.js";
import { metrics } from "../metrics/metrics.js";
import { IrcFailure } from "./errors.js";
import type { IrcConnection } from "./IrcConnection.js";

const log = getLogger("irc/bot-rejoin");
const FIRST_DELAY_MS = 1_000;
const MAX_DELAY_MS = 60_000;

export class BotRejoiner {
  /** Casefolded channels the bot is out of for good (until it joins them again). */
  private readonly excluded = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly networkId: string,
    private readonly bot: IrcConnection,
    /** Whether the bridge still wants the bot in a channel (it is still linked to a room). */
    private readonly stillBridged: (channelName: string) => boolean,
    /** The bot cannot get back into a channel: tell the people who rely on it. */
    private readonly onExcluded: (channelName: string, reason: string) => void,
    private readonly firstDelayMs = FIRST_DELAY_MS,
  ) {
    bot.on("kicked", ({ channel, by, reason, key }) => {
      log.warn("The bridge bot was kicked; rejoining", { network: networkId, channel, by, reason });
      this.schedule(channel, key, 1);
    });
  }

  private schedule(channel: string, key: string | null, attempt: number): void {
    const folded = this.bot.casefold(channel);
    if (this.timers.has(folded)) return;
    const ceiling = Math.min(MAX_DELAY_MS, this.firstDelayMs * 2 ** (attempt - 1));
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    const timer = setTimeout(() => {
      this.timers.delete(folded);
      void this.rejoin(channel, key, attempt);
    }, delay);
    timer.unref();
    this.timers.set(folded, timer);
  }

  private async rejoin(channel: string, key: string | null, attempt: number): Promise<void> {
    if (!this.stillBridged(channel) || this.bot.state === "stopped") return;
    try {
      await this.bot.whenConnected(MAX_DELAY_MS);
      await this.bot.join(channel, key);
      log.info("The bridge bot is back in a channel it was kicked from", { network: this.networkId, channel, attempt });
      if (this.excluded.delete(this.bot.casefold(channel))) metrics.botExcludedChannels.set({ network: this.networkId }, this.excluded.size);
    } catch (err) {
      if (err instanceof IrcFailure && err.fatal) {
        log.error("The bridge bot cannot rejoin a channel it was kicked from; its lines are not bridged while no puppet is there", {
          network: this.networkId,
          channel,
          error: err.message,
        });
        this.excluded.add(this.bot.casefold(channel));
        metrics.botExcludedChannels.set({ network: this.networkId }, this.excluded.size);
        this.onExcluded(channel, err.message);
        return;
      }
      this.schedule(channel, key, attempt + 1);
    }
  }

  stop(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}
