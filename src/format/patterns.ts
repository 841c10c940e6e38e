import { casefold, type CaseMapping } from "./casemap.js";

/** Whether a channel matches a config pattern (`*` any run, `?` one character), case-insensitively. */
export function matchesChannelPattern(pattern: string, channel: string, mapping: CaseMapping = "rfc1459"): boolean {
  const body = casefold(pattern, mapping)
    .split("")
    .map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.+^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${body}$`).test(casefold(channel, mapping));
}

/** Allowed when no allow pattern is given or one matches, and no deny pattern matches. */
export function channelAllowed(channel: string, allow: string[], deny: string[], mapping?: CaseMapping): boolean {
  const matches = (p: string) => matchesChannelPattern(p, channel, mapping);
  return (allow.length === 0 || allow.some(matches)) && !deny.some(matches);
}
