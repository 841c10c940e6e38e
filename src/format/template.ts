import { casefold, type CaseMapping } from "./casemap.js";

/** Characters a Matrix user ID localpart may hold (the spec's historical grammar, lower-case). */
const LOCALPART_OK = /^[a-z0-9._\-/]$/;

/**
 * Escapes an IRC nick into a Matrix localpart: casefolded with the network's case mapping
 * (so `Alice` and `alice`, one IRC user, are one ghost), then every character a localpart
 * may not hold becomes `=xx`, the hex of its UTF-8 bytes. `=` never occurs in nicks, so
 * `unescapeLocalpart` reverses it exactly.
 */
export function escapeNickForLocalpart(nick: string, mapping: CaseMapping = "rfc1459"): string {
  let out = "";
  for (const char of casefold(nick, mapping)) {
    if (LOCALPART_OK.test(char)) out += char;
    else for (const byte of Buffer.from(char, "utf8")) out += `=${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}

export function unescapeLocalpart(localpart: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < localpart.length; i++) {
    if (localpart[i] === "=" && /^[0-9a-f]{2}$/.test(localpart.slice(i + 1, i + 3))) {
      bytes.push(parseInt(localpart.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(...Buffer.from(localpart[i], "utf8"));
  }
  return Buffer.from(bytes).toString("utf8");
}

/** Replaces `$NAME` placeholders; unknown placeholders are left as they are. */
export function fillTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\$([A-Z]+)/g, (whole, name: string) => values[name] ?? whole);
}

/** Ghost user IDs made lately: the same few nicks speak again and again, once per line relayed. */
const recentGhostIds = new Map<string, string>();
const RECENT_GHOST_IDS = 10_000;

export function ghostUserId(template: string, nick: string, domain: string, mapping?: CaseMapping): string {
  const key = `${nick}\n${mapping ?? ""}\n${template}\n${domain}`;
  let userId = recentGhostIds.get(key);
  if (userId === undefined) {
    userId = `@${fillTemplate(template, { NICK: escapeNickForLocalpart(nick, mapping) })}:${domain}`;
    if (recentGhostIds.size >= RECENT_GHOST_IDS) recentGhostIds.clear();
    recentGhostIds.set(key, userId);
  }
  return userId;
}

export function portalAlias(template: string, channel: string, domain: string): string {
  return `#${fillTemplate(template, { CHANNEL: channel })}:${domain}`;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The registration namespace regex that covers every ID a template can produce:
 * each `$VAR` becomes `.*`, everything else is matched literally.
 */
export function templateRegex(sigil: "@" | "#", template: string, domain: string): string {
  const body = template.split(/\$[A-Z]+/).map(escapeRegex).join(".*");
  return `${sigil}${body}:${escapeRegex(domain)}`;
}

/**
 * Reads `$VAR` back out of an ID made from a template (`#irc_libera_$CHANNEL` → the channel of
 * `#irc_libera_#rust:example.org`); null when the ID is not one of the template's.
 */
export function readTemplate(sigil: "@" | "#", template: string, variable: string, domain: string, id: string): string | null {
  const [before, after] = template.split(`$${variable}`);
  if (after === undefined) return null;
  const re = new RegExp(`^${escapeRegex(sigil + before)}(.+)${escapeRegex(after)}:${escapeRegex(domain)}$`);
  return re.exec(id)?.[1] ?? null;
}
