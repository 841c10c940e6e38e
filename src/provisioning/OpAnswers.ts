/**
 * Private messages to the bridge bot, read as an operator's answers: `yes`/`y` or `no`/`n` to
 * the request waiting for them (anything else gets a one-line reminder), and `!unlink #chan`.
 * Lines from nicks with nothing pending are ignored (the bot is no one's chat partner), and
 * NOTICEs never get an answer (IRC's rule against notice loops). What a stranger can make the
 * bot answer (`!unlink`, reminders) is rate-limited per nick, so nobody can fill the bot's
 * flood control (its JOINs and MODE queries wait behind it) by PMing it.
 */
import type { IrcMessage } from "../irc/IrcConnection.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import { metrics } from "../metrics/metrics.js";
import { RateLimiter } from "../bridge/RateLimiter.js";
import type { LinkRequests } from "./LinkRequests.js";
import { parseOpAnswer } from "./parse.js";

const log = getLogger("provisioning/answers");

export class OpAnswers {
  private readonly limiter = new RateLimiter({ burst: 3, perMinute: 6 });

  constructor(private readonly requests: LinkRequests) {}

  attach(pool: NetworkPool): void {
    pool.on("botPrivateLine", (msg) => {
      this.onLine(pool, msg).catch((err: Error) => log.warn("Could not handle a private message to the bot", { network: pool.networkId, from: msg.nick, error: err.message }));
    });
  }

  private async onLine(pool: NetworkPool, msg: IrcMessage): Promise<void> {
    if (msg.kind !== "privmsg" || pool.isOwnNick(msg.nick)) return;
    const answer = parseOpAnswer(msg.text);
    const request = this.requests.pending.of(pool.networkId, pool.bot.casefold(msg.nick));
    if (request && answer.kind === "yes") return this.requests.approve(pool, request, msg.nick);
    if (request && answer.kind === "no") return this.requests.refuse(pool, request);
    if (!request && answer.kind !== "unlink") return;
    if (!this.limiter.take(`${pool.networkId}\u0000${pool.bot.casefold(msg.nick)}`)) return void metrics.rateLimited.inc({ kind: "bot_pm", network: pool.networkId });
    if (answer.kind === "unlink") return this.requests.unlinkByOp(pool, msg.nick, answer.channel);
    return this.requests.remind(pool, request!);
  }
}
