/**
 * IRC nick rules (RFC 2812 plus what real servers accept): the first character is a letter
 * or one of `[]\`_^{|}`; later ones may also be digits or `-`.
 */
const FIRST_OK = /[A-Za-z[\]\\`_^{|}]/;
const REST_OK = /[A-Za-z0-9[\]\\`_^{|}-]/;

export const DEFAULT_NICKLEN = 30;

export function isValidNick(nick: string, maxLength = DEFAULT_NICKLEN): boolean {
  if (nick.length === 0 || nick.length > maxLength) return false;
  if (!FIRST_OK.test(nick[0])) return false;
  return [...nick.slice(1)].every((c) => REST_OK.test(c));
}

/**
 * Makes any string a legal nick: accents are stripped to their base letter, other illegal
 * characters dropped, a leading digit or `-` gets a `_` before it, and the result is cut to
 * `maxLength`. An input with nothing usable becomes `M`.
 */
export function sanitiseNick(input: string, maxLength = DEFAULT_NICKLEN): string {
  const ascii = input.normalize("NFKD").replace(/[\u0300-\u036f]/g, "");
  let nick = [...ascii].filter((c) => REST_OK.test(c)).join("");
  if (nick.length === 0) nick = "M";
  if (!FIRST_OK.test(nick[0])) nick = `_${nick}`;
  return nick.slice(0, Math.max(1, maxLength));
}

/**
 * The nick to try after `nick` was refused as in use: a trailing `_` while there is room,
 * otherwise the last character is replaced by a digit that increases with each attempt.
 */
export function fallbackNick(nick: string, attempt: number, maxLength = DEFAULT_NICKLEN): string {
  if (attempt === 1 && nick.length < maxLength) return `${nick}_`;
  const suffix = String(attempt);
  return `${nick.slice(0, Math.max(1, maxLength - suffix.length))}${suffix}`;
}
