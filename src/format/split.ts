/**
 * Splits an IRC message into pieces of at most `maxBytes` UTF-8 bytes each: at a space where
 * one falls in the second half of the piece, never inside a character (grapheme) or a
 * formatting code, and with the formatting in force at the cut reopened at the start of the
 * next piece (IRC clients reset formatting at each line).
 */
import { plainOf, reopen, styleAfter } from "./ircFormat.js";

const CODE = /\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9a-fA-F]{6}(?:,[0-9a-fA-F]{6})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]/g;
const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/** The text as atoms: whole formatting codes and whole graphemes. */
function atoms(text: string): string[] {
  const out: string[] = [];
  let last = 0;
  const addText = (t: string) => {
    for (const { segment } of graphemes.segment(t)) out.push(segment);
  };
  for (const m of text.matchAll(CODE)) {
    addText(text.slice(last, m.index));
    out.push(m[0]);
    last = m.index + m[0].length;
  }
  addText(text.slice(last));
  return out;
}

function bytes(text: string): number {
  return Buffer.byteLength(text);
}

export function splitIrcText(text: string, maxBytes: number): string[] {
  const pieces: string[] = [];
  let carry = "";
  let rest = text;
  while (bytes(carry + rest) > maxBytes) {
    const parts = atoms(rest);
    let size = bytes(carry);
    let taken = 0;
    let length = 0;
    while (taken < parts.length && size + bytes(parts[taken]) <= maxBytes) {
      size += bytes(parts[taken]);
      length += parts[taken].length;
      taken++;
    }
    // A grapheme larger than the budget (a long emoji sequence) is cut between its code points.
    if (taken === 0) {
      for (const cp of parts[0]) {
        if (length > 0 && size + bytes(cp) > maxBytes) break;
        size += bytes(cp);
        length += cp.length;
      }
    }
    let piece = rest.slice(0, length);
    // Back to the last space, unless the piece already ends a word (or that space is too early).
    const space = piece.lastIndexOf(" ");
    if (rest[length] !== " " && space > 0 && space >= length / 2) piece = piece.slice(0, space);
    pieces.push(carry + piece);
    const style = styleAfter(carry + piece);
    rest = rest.slice(piece.length).replace(/^ /, "");
    carry = reopen(style, rest);
  }
  if (plainOf(rest).length > 0 || pieces.length === 0) pieces.push(carry + rest);
  return pieces;
}
