/**
 * IRC formatting codes: bold \x02, colour \x03 (with up to two "fg[,bg]" numbers),
 * hex colour \x04 (with RRGGBB[,RRGGBB]), reset \x0f, monospace \x11, reverse \x16,
 * italic \x1d, strikethrough \x1e, underline \x1f. Plain-text bodies drop them.
 */
const FORMATTING = /\x03(\d{1,2}(,\d{1,2})?)?|\x04([0-9a-fA-F]{6}(,[0-9a-fA-F]{6})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]/g;

export function stripIrcFormatting(text: string): string {
  return text.replace(FORMATTING, "");
}

export function isChannelName(target: string, chanTypes = "#&"): boolean {
  return target.length > 1 && chanTypes.includes(target[0]);
}

/** A channel key as IRC takes it (RFC 2812: up to 23 characters, no spaces, commas or line breaks; no ':' so it stays one parameter). */
export function isValidChannelKey(key: string): boolean {
  return /^[^\s,:\0\x0b\x0c]{1,23}$/.test(key);
}
