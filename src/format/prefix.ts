/** ISUPPORT PREFIX and CHANTYPES, as irc-framework keeps them: which prefix modes and channel prefixes a server offers. */

/** The prefix modes a server offers, highest first (ISUPPORT PREFIX, e.g. "(qaohv)~&@%+"). */
export function parsePrefix(value: unknown): string {
  if (Array.isArray(value)) {
    // irc-framework's parsed form: [{ symbol: "@", mode: "o" }, ...]
    return value
      .map((p) => (p && typeof (p as { mode?: unknown }).mode === "string" ? (p as { mode: string }).mode : ""))
      .filter((m) => /^[A-Za-z]$/.test(m))
      .join("");
  }
  if (typeof value !== "string") return "";
  const match = /^\(([A-Za-z]*)\)/.exec(value);
  return match ? match[1] : "";
}

/** irc-framework's CHANTYPES arrays (a new one per ISUPPORT), joined once each: they are read per line. */
const JOINED_CHANTYPES = new WeakMap<string[], string>();

/** The channel prefixes a server offers (ISUPPORT CHANTYPES, e.g. "#&"; "#&" until it says). */
export function chanTypesOf(value: unknown): string {
  if (!Array.isArray(value)) return typeof value === "string" ? value : "#&";
  let joined = JOINED_CHANTYPES.get(value);
  if (joined === undefined) JOINED_CHANTYPES.set(value, (joined = value.join("")));
  return joined;
}
