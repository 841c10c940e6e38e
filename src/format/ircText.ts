import { plainOf } from "./ircFormat.js";

/** Text without IRC formatting codes (see ircFormat.ts for what they are). */
export function stripIrcFormatting(text: string): string {
  return plainOf(text);
}

export function isChannelName(target: string, chanTypes = "#&"): boolean {
  return target.length > 1 && chanTypes.includes(target[0]);
}

/** A channel key as IRC takes it (RFC 2812: up to 23 characters, no spaces, commas or line breaks; no ':' so it stays one parameter). */
export function isValidChannelKey(key: string): boolean {
  return /^[^\s,:\0\x0b\x0c]{1,23}$/.test(key);
}
