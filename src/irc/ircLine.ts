/**
 * irc-framework's line parser (src/irclineparser.js), field for field, for the lines read most
 * (see plainMessage.ts). The library's makes a closure per line, runs a regex over the whole
 * line for CR/LF, splits the tags into arrays (one per tag), runs a case-insensitive regex over
 * every tag value and builds its message object with a null prototype: in CPU profiles of a
 * steady few lines a second (bench/relayCost.ts) it was the largest single cost of reading one.
 *
 * Same results for every input, quirks included (spec/unit/ircLine.test.ts checks it against
 * the library on crafted and random lines): only ASCII spaces separate tokens, runs of them are
 * one separator, a tag without "=" has the empty value, a tag name is lower-cased, "\S", "\N"
 * and "\R" in a value decode to nothing (the library matches its escapes case-insensitively),
 * a lone backslash is dropped, and the prefix splits as the library's parseMask splits it.
 * One difference: the tags are a plain object (what the library's consumers get after their
 * lodash copy), so a tag named `__proto__` cannot be kept and the line is refused (null).
 */

export interface IrcLine {
  tags: Record<string, string>;
  nick: string;
  ident: string;
  hostname: string;
  command: string;
  params: string[];
}

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const COLON = 0x3a;
const AT = 0x40;

function isLineEnd(code: number): boolean {
  return code === LF || code === CR;
}

/** The first position at or after `at` that is not an ASCII space. */
function skipSpaces(input: string, at: number): number {
  while (input.charCodeAt(at) === SPACE) at++;
  return at;
}

/** The end of the token starting at `at`: the next space, or the end of the line. */
function tokenEnd(input: string, at: number): number {
  const space = input.indexOf(" ", at);
  return space === -1 ? input.length : space;
}

/** A tag value with the message-tags escapes undone, as the library undoes them. */
export function decodeTagValue(value: string): string {
  let slash = value.indexOf("\\");
  if (slash === -1) return value;
  let out = "";
  let from = 0;
  while (slash !== -1) {
    out += value.slice(from, slash);
    const next = value[slash + 1];
    from = slash + 2;
    if (next === "\\") out += "\\";
    else if (next === ":") out += ";";
    else if (next === "s") out += " ";
    else if (next === "n") out += "\n";
    else if (next === "r") out += "\r";
    else if (next !== "S" && next !== "N" && next !== "R") from = slash + 1; // a lone backslash goes
    slash = value.indexOf("\\", from);
  }
  return out + value.slice(from);
}

/** Reads `tag;tag=value;...` between `start` and `end` into `tags`; false for a tag named __proto__. */
function readTags(input: string, start: number, end: number, tags: Record<string, string>): boolean {
  let at = start;
  while (at <= end) {
    let stop = input.indexOf(";", at);
    if (stop === -1 || stop > end) stop = end;
    let equals = input.indexOf("=", at);
    if (equals >= stop) equals = -1;
    const key = input.slice(at, equals === -1 ? stop : equals).toLowerCase();
    if (key === "__proto__") return false;
    if (key !== "") tags[key] = equals === -1 ? "" : decodeTagValue(input.slice(equals + 1, stop));
    at = stop + 1;
  }
  return true;
}

/** The library's parseMask: nick!ident@host, and its guesses for the partial forms. */
function splitPrefix(prefix: string, line: IrcLine): void {
  const bang = prefix.indexOf("!");
  const at = prefix.indexOf("@");
  if (bang === -1 && at === -1) {
    if (prefix.indexOf(".") > -1) line.hostname = prefix;
    else line.nick = prefix;
  } else if (bang === -1) {
    line.nick = prefix.substring(0, at);
    line.hostname = prefix.substring(at + 1);
  } else if (at === -1) {
    line.nick = prefix.substring(0, bang);
    line.ident = prefix.substring(bang + 1);
  } else {
    // substring, not slice: for "a@b!c" the library's arguments cross, and substring swaps them.
    line.nick = prefix.substring(0, bang);
    line.ident = prefix.substring(bang + 1, at);
    line.hostname = prefix.substring(at + 1);
  }
}

/** The line as irc-framework's parseIrcLine reads it, or null for a tag named __proto__. */
export function parseIrcLine(raw: string): IrcLine | null {
  let first = 0;
  let last = raw.length;
  while (first < last && isLineEnd(raw.charCodeAt(first))) first++;
  while (last > first && isLineEnd(raw.charCodeAt(last - 1))) last--;
  const input = first === 0 && last === raw.length ? raw : raw.slice(first, last);

  const line: IrcLine = { tags: {}, nick: "", ident: "", hostname: "", command: "", params: [] };
  let at = 0;
  if (input.charCodeAt(0) === AT) {
    const end = tokenEnd(input, 0);
    if (!readTags(input, 1, end, line.tags)) return null;
    at = skipSpaces(input, end);
  }
  if (input.charCodeAt(at) === COLON) {
    const end = tokenEnd(input, at);
    splitPrefix(input.slice(at + 1, end), line);
    at = skipSpaces(input, end);
  }
  at = skipSpaces(input, at);
  if (at < input.length) {
    const end = tokenEnd(input, at);
    line.command = input.slice(at, end).toUpperCase();
    at = skipSpaces(input, end);
  }
  while (at < input.length) {
    if (input.charCodeAt(at) === COLON && input.charCodeAt(at - 1) === SPACE) {
      line.params.push(input.slice(at + 1));
      break;
    }
    const end = tokenEnd(input, at);
    line.params.push(input.slice(at, end));
    at = skipSpaces(input, end);
  }
  return line;
}
