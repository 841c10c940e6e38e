/**
 * Turns a Matrix message body into lines that are safe to put on IRC. IRC lines end at CR
 * or LF and NUL ends a C string on many servers, so each of them splits or disappears here:
 * no text from Matrix can ever start a raw IRC line of its own. CTCP's \x01 is dropped too,
 * so a Matrix user cannot send CTCP requests to a whole channel by accident.
 */
export function toIrcLines(body: string): string[] {
  return body
    .split(/\r\n|\r|\n/)
    .map((line) => line.replace(/[\0\x01]/g, ""))
    .filter((line) => line.trim().length > 0);
}
