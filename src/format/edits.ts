/**
 * A Matrix edit as the least surprising IRC line, per network (`edits`):
 * - `diff`: only the added words when the edit appends; `s/old/new/` for one short
 *   substitution; otherwise `* ` and the new text;
 * - `full`: always `* ` and the new text;
 * - `off`: nothing (null).
 * Null too when the text did not change (an edit of formatting only, say).
 */
export type EditMode = "diff" | "full" | "off";

/** Longest old or new part still shown as `s/old/new/`. */
const MAX_SUBSTITUTION = 40;

export function editLine(before: string, after: string, mode: EditMode): string | null {
  if (mode === "off" || before === after) return null;
  if (after.trim().length === 0) return null;
  if (mode === "full") return `* ${after}`;
  if (after.startsWith(before) && before.length > 0) {
    const added = after.slice(before.length);
    // Only whole words: "hello" → "hello world" appends, "hell" → "hello" does not.
    if ((/^\s/.test(added) || /\s$/.test(before) || /^[.,;:!?…)]/.test(added)) && added.trim().length > 0) return added.trim();
  }
  const sub = substitution(before, after);
  if (sub) return sub;
  return `* ${after}`;
}

/** `s/old/new/` when one run of whole words changed, both short and free of '/'; else null. */
export function substitution(before: string, after: string): string | null {
  let start = 0;
  while (start < before.length && start < after.length && before[start] === after[start]) start++;
  let end = 0;
  while (end < before.length - start && end < after.length - start && before[before.length - 1 - end] === after[after.length - 1 - end]) end++;
  // Widen to whole words on both sides.
  while (start > 0 && /\S/.test(before[start - 1])) start--;
  while (end > 0 && /\S/.test(before[before.length - end])) end--;
  const old = before.slice(start, before.length - end);
  const replacement = after.slice(start, after.length - end);
  if (!old.trim() || old.length > MAX_SUBSTITUTION || replacement.length > MAX_SUBSTITUTION) return null;
  if (old.includes("/") || replacement.includes("/")) return null;
  // The substitution must be unambiguous: the old text occurs once.
  if (before.indexOf(old) !== before.lastIndexOf(old)) return null;
  return `s/${old.trim()}/${replacement.trim()}/`;
}
