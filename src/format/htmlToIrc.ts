/**
 * Matrix HTML (`formatted_body`) → IRC lines. The HTML is read by htmlparser2 (a tolerant,
 * well-kept HTML tokenizer: unknown and broken markup degrade to their text, never to a
 * dropped message), then walked:
 *
 * - bold/strong, i/em, u/ins, del/s/strike, inline code, font/span colours (nearest of the 99),
 *   spoilers (same-colour text) become IRC codes; headings are bold lines;
 * - links are `text (url)`, or the url alone when the text is the url; pills of Matrix users
 *   are the IRC nick given by `nickOf` (a puppet's or a ghost's), else their text;
 * - blockquotes are `> ` lines, lists `- ` / `1. ` lines (nested ones indented), code blocks
 *   their lines, `<br>` and paragraphs line breaks;
 * - `<mx-reply>` (Matrix's reply fallback) is dropped; anything else is its text.
 */
import { parseDocument } from "htmlparser2";
import { nearestIrcColour, openingCodes, type IrcStyle } from "./ircFormat.js";

interface DomNode {
  type: string;
  name?: string;
  data?: string;
  attribs?: Record<string, string>;
  children?: DomNode[];
}

interface Run {
  text: string;
  style: IrcStyle;
}
type Line = Run[];

/** The Matrix user a matrix.to link points at, if it is a user pill. */
export function pillUserId(href: string): string | null {
  const m = /^https:\/\/matrix\.to\/#\/([^/?]+)/.exec(href);
  if (!m) return null;
  try {
    const id = decodeURIComponent(m[1]);
    return id.startsWith("@") ? id : null;
  } catch {
    return null;
  }
}

const BLOCKS = new Set(["p", "div", "blockquote", "pre", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "tr", "details", "summary"]);
const TOGGLE_TAGS: Record<string, keyof IrcStyle> = { b: "bold", strong: "bold", i: "italic", em: "italic", u: "underline", ins: "underline", del: "strike", s: "strike", strike: "strike", code: "mono" };
const SPOILER_COLOUR = "#000000";

class Out {
  lines: Line[] = [[]];
  get current(): Line {
    return this.lines[this.lines.length - 1];
  }
  /** Adds text to the current line; outside code blocks, a line does not start with spaces. */
  add(text: string, style: IrcStyle, pre = false): void {
    if (!pre && this.current.length === 0) text = text.trimStart();
    if (text) this.current.push({ text, style });
  }
  newline(): void {
    if (this.current.length > 0) this.lines.push([]);
  }
  /** Appends `block`'s lines, the first with `first` before it and the others with `rest`. */
  append(block: Out, first: string, rest: string): void {
    this.newline();
    let n = 0;
    for (const line of block.lines) {
      if (line.length === 0) continue;
      this.lines[this.lines.length - 1] = [{ text: n++ === 0 ? first : rest, style: {} }, ...line];
      this.lines.push([]);
    }
  }
}

class Renderer {
  constructor(private readonly nickOf: (userId: string) => string | null) {}

  children(node: DomNode, style: IrcStyle, out: Out, pre: boolean): void {
    for (const child of node.children ?? []) this.node(child, style, out, pre);
  }

  node(node: DomNode, style: IrcStyle, out: Out, pre: boolean): void {
    if (node.type === "text") {
      const text = node.data ?? "";
      if (pre) {
        text.split("\n").forEach((part, i) => {
          if (i > 0) out.lines.push([]);
          out.add(part, style, true);
        });
      } else out.add(text.replace(/\s+/g, " "), style);
      return;
    }
    if (node.type !== "tag" && node.type !== "script" && node.type !== "style") return this.children(node, style, out, pre);
    const name = node.name ?? "";
    const attribs = node.attribs ?? {};
    if (name === "mx-reply" || name === "script" || name === "style" || name === "head") return;
    if (name === "br") return void out.lines.push([]);
    if (name === "hr") {
      out.newline();
      out.add("---", {});
      return out.newline();
    }
    if (name === "img") return out.add(attribs.alt || attribs.title || "[image]", style);
    if (name === "a") return this.link(node, attribs.href ?? "", style, out, pre);
    if (name === "blockquote") {
      const inner = new Out();
      this.children(node, style, inner, pre);
      return out.append(inner, "> ", "> ");
    }
    if (name === "ul" || name === "ol") return this.list(node, name === "ol" ? Number(attribs.start ?? 1) || 1 : null, style, out, pre);
    let next = style;
    const toggle = TOGGLE_TAGS[name];
    if (toggle && !(name === "code" && pre)) next = { ...style, [toggle]: true };
    if (/^h[1-6]$/.test(name)) next = { ...style, bold: true };
    const fg = attribs["data-mx-color"] ?? attribs.color;
    const bg = attribs["data-mx-bg-color"];
    if ((name === "font" || name === "span") && (fg || bg)) next = { ...next, ...(fg ? { fg: hex(fg) } : {}), ...(bg ? { bg: hex(bg) } : {}) };
    if ("data-mx-spoiler" in attribs) next = { ...next, fg: SPOILER_COLOUR, bg: SPOILER_COLOUR };
    const block = BLOCKS.has(name);
    if (block) out.newline();
    this.children(node, next, out, pre || name === "pre");
    if (block) out.newline();
  }

  private link(node: DomNode, href: string, style: IrcStyle, out: Out, pre: boolean): void {
    const userId = pillUserId(href);
    const nick = userId ? this.nickOf(userId) : null;
    if (nick) return out.add(nick, style);
    const inner = new Out();
    this.children(node, style, inner, pre);
    const text = inner.lines.flat().map((r) => r.text).join("");
    for (const run of inner.lines.flat()) out.add(run.text, run.style);
    const bare = href.replace(/^mailto:/, "");
    if (href && !userId && !href.startsWith("https://matrix.to/") && text.trim() !== href && text.trim() !== bare) out.add(` (${href})`, style);
  }

  private list(node: DomNode, start: number | null, style: IrcStyle, out: Out, pre: boolean): void {
    let n = start ?? 1;
    out.newline();
    for (const item of node.children ?? []) {
      if (item.type !== "tag" || item.name !== "li") continue;
      const inner = new Out();
      this.children(item, style, inner, pre);
      const marker = start === null ? "- " : `${n++}. `;
      out.append(inner, marker, " ".repeat(marker.length));
    }
  }
}

function hex(colour: string): string {
  const c = colour.trim().toLowerCase();
  if (/^#[0-9a-f]{6}$/.test(c)) return c;
  if (/^#[0-9a-f]{3}$/.test(c)) return `#${c[1]}${c[1]}${c[2]}${c[2]}${c[3]}${c[3]}`;
  return "#000000";
}

const TOGGLE_CODES: [keyof IrcStyle, string][] = [["bold", "\x02"], ["italic", "\x1d"], ["underline", "\x1f"], ["strike", "\x1e"], ["mono", "\x11"], ["reverse", "\x16"]];

/** One line of runs as IRC text, with the fewest codes that switch between styles. */
export function serializeRuns(runs: Run[]): string {
  let out = "";
  let current: IrcStyle = {};
  for (const run of runs) {
    const s = run.style;
    for (const [key, code] of TOGGLE_CODES) if (Boolean(current[key]) !== Boolean(s[key])) out += code;
    const colourOf = (st: IrcStyle) => `${st.fg ? nearestIrcColour(st.fg) : ""},${st.bg ? nearestIrcColour(st.bg) : ""}`;
    if (colourOf(current) !== colourOf(s)) {
      if (!s.fg && !s.bg) out += "\x03";
      else out += openingCodes({ fg: s.fg, bg: s.bg });
      // A digit or comma right after a colour code would be read as part of it.
      if (/^[\d,]/.test(run.text)) out += "\x02\x02";
    } else if (!s.fg && !s.bg && out.endsWith("\x03") && /^[\d,]/.test(run.text)) out += "\x02\x02";
    out += run.text;
    current = s;
  }
  return out;
}

/** IRC lines for a Matrix HTML body; `nickOf` gives the IRC nick of a pilled Matrix user. */
export function htmlToIrcLines(html: string, nickOf: (userId: string) => string | null = () => null): string[] {
  const doc = parseDocument(html, { decodeEntities: true }) as unknown as DomNode;
  const out = new Out();
  new Renderer(nickOf).children(doc, {}, out, false);
  return out.lines
    .map((line) => trimRuns(line))
    .filter((line) => line.some((run) => run.text.trim().length > 0))
    .map(serializeRuns);
}

/** Trailing spaces of a line go (they come from HTML layout). */
function trimRuns(line: Line): Line {
  const runs = line.map((r) => ({ ...r }));
  if (runs.length > 0) runs[runs.length - 1].text = runs[runs.length - 1].text.replace(/\s+$/, "");
  return runs.filter((r) => r.text.length > 0);
}
