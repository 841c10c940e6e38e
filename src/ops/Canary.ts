/**
 * The end-to-end canary of one network: every `intervalMs` a connection of the bridge's own
 * (`canary.nick`, in the pool like a puppet, but none of its lines read as channel traffic)
 * says a line with a fresh token in `canary.channel`, and the bridge waits to see that line
 * delivered by its own read path: the bot's (or whichever connection delivers the channel)
 * socket, the ChannelBroker, the pool, up to where IrcToMatrix takes delivered lines. A line
 * that does not come back within one interval is a missed probe; `maxMissed` in a row make
 * /ready fail. This catches what a "connected" state cannot: a link that went silent. Each
 * missed probe also makes the bot check its link, so a silent one is replaced at once.
 *
 * The channel need not be linked to a room: the probe is taken where delivered lines enter
 * IrcToMatrix, before the room lookup (whether the homeserver answers is /ready's own check).
 */
import { randomBytes } from "node:crypto";
import type { NetworkConfig } from "../config/schema.js";
import type { IrcConnection, IrcMessage } from "../irc/IrcConnection.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import { metrics } from "../metrics/metrics.js";
import type { Check } from "./Readiness.js";

const log = getLogger("ops/canary");
const PREFIX = "bridge canary ";

export interface CanarySettings {
  channel: string;
  nick: string;
  intervalMs: number;
  maxMissed: number;
}

/** The canary settings of a network, or null when it has none (no channel, or disabled). */
export function canarySettings(network: NetworkConfig): CanarySettings | null {
  const { canary } = network;
  if (!canary.enabled || !canary.channel) return null;
  return { channel: canary.channel, nick: canary.nick ?? `${network.botNick.slice(0, 23)}-canary`, intervalMs: canary.intervalMs, maxMissed: canary.maxMissed };
}

export class Canary {
  private connection: IrcConnection | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Probes on their way: token → when sent (ms since the epoch). */
  private readonly pending = new Map<string, number>();
  /** Probes missed in a row (0 after one comes back). */
  private missed = 0;
  private lastFailure = "";
  private last: { roundTripMs: number; at: number } | null = null;

  constructor(
    private readonly pool: NetworkPool,
    private readonly settings: CanarySettings,
    private readonly quitMessage: string,
  ) {}

  /** Whether `channelName` is the canary's channel (the bot rejoins it like a linked one). */
  isCanaryChannel(channelName: string): boolean {
    return this.pool.bot.casefold(channelName) === this.pool.bot.casefold(this.settings.channel);
  }

  /** Puts the bot in the channel, connects the canary, and probes every interval. Call once the bot is up. */
  start(): void {
    const { channel, intervalMs } = this.settings;
    const failed = (who: string) => (err: Error) => log.warn(`The ${who} could not join the canary channel yet; retrying with its reconnects`, { network: this.pool.networkId, channel, error: err.message });
    this.pool.bot.join(channel).catch(failed("bot"));
    const connection = this.pool.canaryConnection(this.settings.nick);
    this.connection = connection;
    connection.want(channel);
    connection.connect().then(() => connection.join(channel), failed("canary")).catch(failed("canary"));
    this.timer = setInterval(() => this.probe(), intervalMs);
    this.timer.unref();
  }

  /** Takes every line of the canary channel (none is relayed); true when `msg` was one. */
  observe(msg: IrcMessage): boolean {
    if (!this.isCanaryChannel(msg.target)) return false;
    const token = msg.text.startsWith(PREFIX) ? msg.text.slice(PREFIX.length) : null;
    const sentAt = token ? this.pending.get(token) : undefined;
    if (token && sentAt !== undefined) {
      this.pending.delete(token);
      const roundTripMs = Date.now() - sentAt;
      metrics.canaryRoundtrip.observe({ network: this.pool.networkId }, roundTripMs / 1000);
      if (this.missed > 0) log.info("Canary probes come back again", { network: this.pool.networkId, missedBefore: this.missed });
      this.missed = 0;
      this.last = { roundTripMs, at: Date.now() };
    }
    return true;
  }

  /** Settles the probes older than one interval as missed, then sends the next. */
  private probe(): void {
    const now = Date.now();
    for (const [token, sentAt] of this.pending) {
      if (now - sentAt < this.settings.intervalMs) continue;
      this.pending.delete(token);
      this.failed("missed", `a probe sent ${Math.round((now - sentAt) / 1000)} s ago did not come back`);
      // The bot should have delivered it: a link gone silent is found now (a PING it does not
      // answer in time drops it, and the bot reconnects), not at the library's ping timeout,
      // minutes later. A live link just answers.
      void this.pool.bot.verifyLink().then((alive) => alive || log.warn("The bot's link was silent; reconnecting it", { network: this.pool.networkId }));
    }
    const connection = this.connection;
    if (!connection || connection.state !== "connected" || !connection.isJoined(this.settings.channel)) {
      return this.failed("not_sent", `the canary (${this.settings.nick}) is not connected or not in ${this.settings.channel}`);
    }
    const token = randomBytes(6).toString("hex");
    this.pending.set(token, now);
    connection.send("privmsg", this.settings.channel, PREFIX + token).catch((err: Error) => {
      if (this.pending.delete(token)) this.failed("not_sent", `sending a probe failed: ${err.message}`);
    });
  }

  private failed(reason: "missed" | "not_sent", detail: string): void {
    this.missed += 1;
    this.lastFailure = detail;
    metrics.canaryFailures.inc({ network: this.pool.networkId, reason });
    const meta = { network: this.pool.networkId, missedInARow: this.missed, detail };
    if (this.missed === this.settings.maxMissed) log.error("Canary probes do not come back: IRC traffic of this network is not flowing", meta);
    else log.warn("Canary probe failed", meta);
  }

  /** The /ready check: failing after `maxMissed` probes in a row. */
  check(): Check {
    const name = `canary:${this.pool.networkId}`;
    if (this.missed >= this.settings.maxMissed) return { name, ok: false, detail: `${this.missed} probes in a row did not come back (last: ${this.lastFailure})` };
    const seen = this.last ? `last round trip ${this.last.roundTripMs} ms, ${Math.round((Date.now() - this.last.at) / 1000)} s ago` : "no probe back yet";
    return { name, ok: true, detail: this.missed > 0 ? `${seen}; ${this.missed} missed since (${this.lastFailure})` : seen };
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.pending.clear();
    await this.connection?.quit(this.quitMessage);
  }
}
