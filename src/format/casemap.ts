/**
 * IRC case mapping. Servers announce CASEMAPPING in ISUPPORT; rfc1459 (the default) also
 * folds `[]\~` onto `{}|^`, strict-rfc1459 leaves `~`/`^` alone, ascii folds letters only.
 */
export type CaseMapping = "rfc1459" | "strict-rfc1459" | "ascii";

export function parseCaseMapping(value: string | undefined): CaseMapping {
  return value === "ascii" || value === "strict-rfc1459" ? value : "rfc1459";
}

const RECENT_FOLDS_MAX = 4096;
const RECENT_FOLDS = new Map<string, Map<string, string>>([["rfc1459", new Map()], ["strict-rfc1459", new Map()], ["ascii", new Map()]]);

/**
 * Only A-Z (and rfc1459's punctuation) fold: IRC servers do not fold other letters, so
 * `JÜRGEN` and `jÜrgen` are the same nick but `jürgen` is someone else (toLowerCase would
 * let that someone answer for an operator named Jürgen).
 */
export function casefold(name: string, mapping: CaseMapping = "rfc1459"): string {
  // The same few names (a channel, a puppet's nick with its brackets) are folded for every line.
  const recent = RECENT_FOLDS.get(mapping);
  if (!recent) return fold(name, mapping);
  let folded = recent.get(name);
  if (folded === undefined) {
    folded = fold(name, mapping);
    if (recent.size >= RECENT_FOLDS_MAX) recent.clear();
    recent.set(name, folded);
  }
  return folded;
}

function fold(name: string, mapping: CaseMapping): string {
  let out = name.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
  if (mapping === "ascii") return out;
  out = out.replace(/\[/g, "{").replace(/\]/g, "}").replace(/\\/g, "|");
  if (mapping === "rfc1459") out = out.replace(/~/g, "^");
  return out;
}
