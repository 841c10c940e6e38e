/** ISUPPORT PREFIX: which channel prefix modes a server offers. */

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
