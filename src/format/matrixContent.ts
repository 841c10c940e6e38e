/**
 * The IRC lines of a Matrix message's content: its HTML (`formatted_body`) where it has one,
 * else its plain body, without Matrix's reply fallback either way, and made safe for IRC
 * (no CR, LF, NUL or CTCP \x01 inside a line: see toIrcLines).
 */
import { htmlToIrcLines } from "./htmlToIrc.js";
import { toIrcLines } from "./lines.js";
import { stripMxReply, stripReplyFallback } from "./replies.js";

export interface TextContent {
  body?: unknown;
  format?: unknown;
  formatted_body?: unknown;
}

export function ircLinesOf(content: TextContent, nickOf: (userId: string) => string | null = () => null): string[] {
  if (content.format === "org.matrix.custom.html" && typeof content.formatted_body === "string") {
    const lines = htmlToIrcLines(stripMxReply(content.formatted_body), nickOf).flatMap(toIrcLines);
    if (lines.length > 0) return lines;
  }
  return typeof content.body === "string" ? toIrcLines(stripReplyFallback(content.body)) : [];
}

/** `!irc ...`: a command to the bridge, typed in a bridged room; never relayed to IRC. */
export function isBridgeCommand(content: TextContent): boolean {
  return typeof content.body === "string" && /^!irc(\s|$)/i.test(stripReplyFallback(content.body).trimStart());
}
