/**
 * Private messages to the bridge bot, read as an operator's answers: `yes`/`y` or `no`/`n` to
 * the request waiting for them (anything else gets a one-line reminder), and `!unlink #chan`.
 * Lines from nicks with nothing pending are ignored (the bot is no one's chat partner), and
 * NOTICEs never get an answer (IRC's rule against notice loops).
 */
import type { IrcMessage } from "../irc/IrcConnection.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import { getLogger } from "../logging.js";
import type { LinkRequests } from "./LinkRequests.js";
import { parseOpAnswer } from "./parse.js";

const log = getLogger("provisioning/answers");

export class OpAnswers {
  constructor(private readonly requests: LinkRequests) {}

  attach(pool: NetworkPool): void {
    pool.on("botPrivateLine", (msg) => {
      this.onLine(pool, msg).catch((err: Error) => log.warn("Could not handle a private message to the bot", { network: pool.networkId, from: msg.nick, error: err.message }));
    });
  }

  private async onLine(pool: NetworkPool, msg: IrcMessage): Promise<void> {
    if (msg.kind !== "privmsg" || pool.isOwnNick(msg.nick)) return;
    const answer = parseOpAnswer(msg.text);
    if (answer.kind === "unlink") return this.requests.unlinkByOp(pool, msg.nick, answer.channel);
    const request = this.requests.pending.of(pool.networkId, pool.bot.casefold(msg.nick));
    if (!request) return;
    if (answer.kind === "yes") return this.requests.approve(pool, request, msg.nick);
    if (answer.kind === "no") return this.requests.refuse(pool, request);
    return this.requests.remind(pool, request);
  }
}
