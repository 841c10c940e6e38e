/**
 * The one builder of Matrix content for a line from IRC (channels, PMs, notices, emotes):
 * `body` is the plain text; where the line has formatting or mentions, `formatted_body` is
 * HTML (`org.matrix.custom.html`). Every character of IRC text is HTML-escaped, so nothing
 * from IRC reaches the HTML as markup; each line is parsed on its own, so formatting never
 * leaks into the next line.
 */
import { parseIrc, plainOf, type IrcStyle } from "./ircFormat.js";

const NICK_RUN = /[A-Za-z0-9[\]\\`_^{|}-]+/g;
/** Any character that starts a formatting code (ircFormat's CODE). */
const ANY_CODE = /[\x02-\x04\x0f\x11\x16\x1d-\x1f]/;

export function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Escaped text, with nicks of Matrix users (by `userIdOf`) as pills; found user IDs are added to `found`. */
function withPills(text: string, userIdOf: (nick: string) => string | null, found: Set<string>): string {
  let html = "";
  let last = 0;
  for (const match of text.matchAll(NICK_RUN)) {
    const userId = userIdOf(match[0]);
    if (!userId) continue;
    found.add(userId);
    html += `${escapeHtml(text.slice(last, match.index))}<a href="https://matrix.to/#/${encodeURIComponent(userId)}">${escapeHtml(match[0])}</a>`;
    last = match.index + match[0].length;
  }
  return html + escapeHtml(text.slice(last));
}

function styled(inner: string, style: IrcStyle): string {
  let html = inner;
  let { fg, bg } = style;
  if (style.reverse && (fg || bg)) [fg, bg] = [bg ?? "#ffffff", fg ?? "#000000"];
  if (fg && bg && fg === bg) html = `<span data-mx-spoiler>${html}</span>`;
  else if (fg || bg) html = `<font${fg ? ` data-mx-color="${fg}"` : ""}${bg ? ` data-mx-bg-color="${bg}"` : ""}>${html}</font>`;
  if (style.mono) html = `<code>${html}</code>`;
  if (style.strike) html = `<del>${html}</del>`;
  if (style.underline) html = `<u>${html}</u>`;
  if (style.italic) html = `<em>${html}</em>`;
  if (style.bold) html = `<strong>${html}</strong>`;
  return html;
}

/** The HTML of one IRC line (escaped, formatted, with pills), and the users it mentions. */
export function ircToHtml(line: string, userIdOf: (nick: string) => string | null = () => null): { html: string; userIds: Set<string> } {
  const userIds = new Set<string>();
  const html = parseIrc(line)
    .map((run) => styled(withPills(run.text, userIdOf, userIds), run.style))
    .join("");
  return { html, userIds };
}

/**
 * Content for a line from IRC. `userIdOf` names the Matrix user a nick stands for (mentions),
 * or null. Extra fields (`m.relates_to` of a reply) are the caller's.
 */
export function ircContent(msgtype: string, text: string, userIdOf: (nick: string) => string | null = () => null): Record<string, unknown> {
  // Most lines have no formatting code: their body is the text, and they need HTML only for pills.
  if (!ANY_CODE.test(text)) return plainContent(msgtype, text, userIdOf);
  const body = plainOf(text);
  const { html, userIds } = ircToHtml(text, userIdOf);
  const content: Record<string, unknown> = { msgtype, body };
  if (html !== escapeHtml(body)) {
    content.format = "org.matrix.custom.html";
    content.formatted_body = html;
  }
  if (userIds.size > 0) content["m.mentions"] = { user_ids: [...userIds] };
  return content;
}

/** ircContent of a line without formatting codes (the same content, without parsing runs). */
function plainContent(msgtype: string, text: string, userIdOf: (nick: string) => string | null): Record<string, unknown> {
  const content: Record<string, unknown> = { msgtype, body: text };
  let anyPill = false;
  for (const match of text.matchAll(NICK_RUN)) {
    if (userIdOf(match[0])) {
      anyPill = true;
      break;
    }
  }
  if (!anyPill) return content;
  const userIds = new Set<string>();
  content.format = "org.matrix.custom.html";
  content.formatted_body = withPills(text, userIdOf, userIds);
  content["m.mentions"] = { user_ids: [...userIds] };
  return content;
}
