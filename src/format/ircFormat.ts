/**
 * IRC formatting as data: a line becomes runs of text, each with the style in force. Codes:
 * bold \x02, colour \x03 (fg[,bg], 0–98; 99 is "default"), hex colour \x04 (RRGGBB[,RRGGBB]),
 * reset \x0f, monospace \x11, reverse \x16, italic \x1d, strikethrough \x1e, underline \x1f.
 * A line starts plain: nothing leaks from one line into the next.
 */
export interface IrcStyle {
  bold?: boolean;
  italic?: boolean;
  underline?: boolean;
  strike?: boolean;
  mono?: boolean;
  reverse?: boolean;
  /** Colours as "#rrggbb" (from the 99 IRC colours or hex codes). */
  fg?: string;
  bg?: string;
}

export interface IrcRun {
  text: string;
  style: IrcStyle;
}

/** The 99 IRC colours (0–98) as RGB, from the modern IRC documentation (ircdocs.horse). */
export const IRC_COLOURS: readonly string[] = [
  "#ffffff", "#000000", "#00007f", "#009300", "#ff0000", "#7f0000", "#9c009c", "#fc7f00",
  "#ffff00", "#00fc00", "#009393", "#00ffff", "#0000fc", "#ff00ff", "#7f7f7f", "#d2d2d2",
  "#470000", "#472100", "#474700", "#324700", "#004700", "#00472c", "#004747", "#002747",
  "#000047", "#2e0047", "#470047", "#47002a", "#740000", "#743a00", "#747400", "#517400",
  "#007400", "#007449", "#007474", "#004074", "#000074", "#4b0074", "#740074", "#740045",
  "#b50000", "#b56300", "#b5b500", "#7db500", "#00b500", "#00b571", "#00b5b5", "#0063b5",
  "#0000b5", "#7500b5", "#b500b5", "#b5006b", "#ff0000", "#ff8c00", "#ffff00", "#b2ff00",
  "#00ff00", "#00ffa0", "#00ffff", "#008cff", "#0000ff", "#a500ff", "#ff00ff", "#ff0098",
  "#ff5959", "#ffb459", "#ffff71", "#cfff60", "#6fff6f", "#65ffc9", "#6dffff", "#59b4ff",
  "#5959ff", "#c459ff", "#ff66ff", "#ff59bc", "#ff9c9c", "#ffd39c", "#ffff9c", "#e2ff9c",
  "#9cff9c", "#9cffdb", "#9cffff", "#9cd3ff", "#9c9cff", "#dc9cff", "#ff9cff", "#ff94d3",
  "#000000", "#131313", "#282828", "#363636", "#4d4d4d", "#656565", "#818181", "#9f9f9f",
  "#bcbcbc", "#e2e2e2", "#ffffff",
];

const TOGGLES: Record<string, keyof IrcStyle> = { "\x02": "bold", "\x1d": "italic", "\x1f": "underline", "\x1e": "strike", "\x11": "mono", "\x16": "reverse" };
const CODE = /\x03(?:(\d{1,2})(?:,(\d{1,2}))?)?|\x04(?:([0-9a-fA-F]{6})(?:,([0-9a-fA-F]{6}))?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]/g;

function colour(code: string | undefined): string | undefined {
  if (code === undefined) return undefined;
  const n = Number(code);
  return n < IRC_COLOURS.length ? IRC_COLOURS[n] : undefined; // 99 (and anything else): the default
}

/** Walks one IRC line: `onText` gets each piece of text with its style; returns the style at the end. */
function walk(line: string, onText: (text: string, style: IrcStyle) => void): IrcStyle {
  let style: IrcStyle = {};
  let last = 0;
  const push = (text: string) => {
    if (text) onText(text, { ...style });
  };
  for (const m of line.matchAll(CODE)) {
    push(line.slice(last, m.index));
    last = m.index + m[0].length;
    const c = m[0][0];
    if (c === "\x0f") style = {};
    else if (c === "\x03" || c === "\x04") {
      const [fgCode, bgCode] = c === "\x03" ? [m[1], m[2]] : [m[3], m[4]];
      const toRgb = c === "\x03" ? colour : (hex: string | undefined) => (hex === undefined ? undefined : `#${hex.toLowerCase()}`);
      if (fgCode === undefined) {
        delete style.fg;
        delete style.bg;
      } else {
        const fg = toRgb(fgCode);
        if (fg) style.fg = fg;
        else delete style.fg;
        if (bgCode !== undefined) {
          const bg = toRgb(bgCode);
          if (bg) style.bg = bg;
          else delete style.bg;
        }
      }
    } else {
      const key = TOGGLES[c] as "bold";
      if (style[key]) delete style[key];
      else style[key] = true;
    }
  }
  push(line.slice(last));
  return style;
}

/** Splits one IRC line into styled runs (empty runs are left out). */
export function parseIrc(line: string): IrcRun[] {
  const runs: IrcRun[] = [];
  walk(line, (text, style) => runs.push({ text, style }));
  return runs;
}

/** The style in force at the end of `line` (what a continuation line must reopen). */
export function styleAfter(line: string): IrcStyle {
  return walk(line, () => undefined);
}

/** The codes that reopen `style` before `next` (guarded, so a digit or comma after a colour stays text). */
export function reopen(style: IrcStyle, next: string): string {
  const codes = openingCodes(style);
  return /\x03[\d,]+$/.test(codes) && /^[\d,]/.test(next) ? `${codes}\x02\x02` : codes;
}

/** The text without any formatting code. */
export function plainOf(line: string): string {
  return line.replace(CODE, "");
}

/** The codes that open `style` from a plain state (two-digit colours, so a digit after them stays text). */
export function openingCodes(style: IrcStyle): string {
  let out = "";
  for (const [code, key] of Object.entries(TOGGLES)) if (style[key]) out += code;
  if (style.fg || style.bg) {
    const fg = nearestIrcColour(style.fg ?? "#ffffff");
    const fgCode = style.fg ? String(fg).padStart(2, "0") : "99";
    out += style.bg ? `\x03${fgCode},${String(nearestIrcColour(style.bg)).padStart(2, "0")}` : `\x03${fgCode}`;
  }
  return out;
}

/** The closest of the 99 IRC colours to "#rrggbb" (plain RGB distance; exact colours map to themselves). */
export function nearestIrcColour(rgb: string): number {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(rgb.trim());
  if (!m) return 1;
  const [r, g, b] = [m[1], m[2], m[3]].map((h) => parseInt(h, 16));
  let best = 0;
  let bestDistance = Infinity;
  IRC_COLOURS.forEach((c, i) => {
    const d = (parseInt(c.slice(1, 3), 16) - r) ** 2 + (parseInt(c.slice(3, 5), 16) - g) ** 2 + (parseInt(c.slice(5, 7), 16) - b) ** 2;
    if (d < bestDistance) [best, bestDistance] = [i, d];
  });
  return best;
}
