/**
 * IRC lines that say a Matrix user's nick become Matrix mentions: the nick is linked to the
 * user (a "pill") in the HTML body, and the user is listed in `m.mentions` so they are notified.
 * Built by the one content builder (ircContent.ts), with formatting; this is its mentions part.
 */
import { ircContent } from "./ircContent.js";

/**
 * The extra content fields for the mentions in `body` (empty when there are none).
 * `userIdOf` gives the Matrix user a nick stands for, or null.
 */
export function mentionsIn(body: string, userIdOf: (nick: string) => string | null): Record<string, unknown> {
  const { msgtype: _msgtype, body: _body, ...extra } = ircContent("m.text", body, userIdOf);
  return extra["m.mentions"] ? extra : {};
}
