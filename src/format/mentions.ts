/**
 * IRC lines that say a Matrix user's nick become Matrix mentions: the nick is linked to the
 * user (a "pill") in the HTML body, and the user is listed in `m.mentions` so they are notified.
 */
const NICK_RUN = /[A-Za-z0-9[\]\\`_^{|}-]+/g;

function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/**
 * The extra content fields for the mentions in `body` (empty when there are none).
 * `userIdOf` gives the Matrix user a nick stands for, or null.
 */
export function mentionsIn(body: string, userIdOf: (nick: string) => string | null): Record<string, unknown> {
  const userIds = new Set<string>();
  let html = "";
  let last = 0;
  for (const match of body.matchAll(NICK_RUN)) {
    const userId = userIdOf(match[0]);
    if (!userId) continue;
    userIds.add(userId);
    html += `${escapeHtml(body.slice(last, match.index))}<a href="https://matrix.to/#/${encodeURIComponent(userId)}">${escapeHtml(match[0])}</a>`;
    last = match.index + match[0].length;
  }
  if (userIds.size === 0) return {};
  html += escapeHtml(body.slice(last));
  return { format: "org.matrix.custom.html", formatted_body: html, "m.mentions": { user_ids: [...userIds] } };
}
