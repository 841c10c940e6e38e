import { casefold, type CaseMapping } from "./casemap.js";

/**
 * Whether `text` matches `glob` (`*` any run, `?` one character, everything else literal).
 * Two pointers with one remembered `*`: on a mismatch the last `*` takes one more character
 * and matching resumes after it. Earlier stars never need revisiting (the last one can absorb
 * whatever they would have), so this is O(|glob| × |text|) at worst, with no backtracking
 * explosion. A regex built from the glob took 14 s for 5 stars against 200 characters.
 */
export function globMatch(glob: string, text: string): boolean {
  let g = 0;
  let t = 0;
  let star = -1; // index in glob of the last `*` seen
  let resume = 0; // where in text that `*` has absorbed up to
  while (t < text.length) {
    if (g < glob.length && (glob[g] === "?" || (glob[g] !== "*" && glob[g] === text[t]))) {
      g++;
      t++;
    } else if (g < glob.length && glob[g] === "*") {
      star = g++;
      resume = t;
    } else if (star >= 0) {
      g = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (g < glob.length && glob[g] === "*") g++;
  return g === glob.length;
}

/** Whether a channel matches a config pattern (`*` any run, `?` one character), case-insensitively. */
export function matchesChannelPattern(pattern: string, channel: string, mapping: CaseMapping = "rfc1459"): boolean {
  return globMatch(casefold(pattern, mapping), casefold(channel, mapping));
}

/** Allowed when no allow pattern is given or one matches, and no deny pattern matches. */
export function channelAllowed(channel: string, allow: string[], deny: string[], mapping?: CaseMapping): boolean {
  const matches = (p: string) => matchesChannelPattern(p, channel, mapping);
  return (allow.length === 0 || allow.some(matches)) && !deny.some(matches);
}
