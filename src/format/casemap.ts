/**
 * IRC case mapping. Servers announce CASEMAPPING in ISUPPORT; rfc1459 (the default) also
 * folds `[]\~` onto `{}|^`, strict-rfc1459 leaves `~`/`^` alone, ascii folds letters only.
 */
export type CaseMapping = "rfc1459" | "strict-rfc1459" | "ascii";

export function parseCaseMapping(value: string | undefined): CaseMapping {
  return value === "ascii" || value === "strict-rfc1459" ? value : "rfc1459";
}

export function casefold(name: string, mapping: CaseMapping = "rfc1459"): string {
  let out = name.toLowerCase();
  if (mapping === "ascii") return out;
  out = out.replace(/\[/g, "{").replace(/\]/g, "}").replace(/\\/g, "|");
  if (mapping === "rfc1459") out = out.replace(/~/g, "^");
  return out;
}
