/** Recognising raw IRC lines cheaply, before they are parsed. */

/**
 * Lines about other users and channel listings that a quiet connection never needs. Others'
 * TAGMSG (typing every few seconds, reactions) and REDACT are heard by the bot alone.
 */
const ABOUT_OTHERS = new Set(["JOIN", "PART", "QUIT", "NICK", "AWAY", "ACCOUNT", "CHGHOST", "SETNAME", "MODE", "TOPIC", "TAGMSG", "REDACT"]);
const LISTINGS = new Set(["353", "366", "352", "315", "354", "329", "332", "333"]);

/** True for a raw line that is a listing, or a membership change of someone other than `ownNick`. */
export function isAboutOthers(line: string, ownNick: string): boolean {
  let i = 0;
  if (line.charCodeAt(0) === 64 /* @ tags */) {
    i = line.indexOf(" ") + 1;
    if (i === 0) return false;
  }
  if (line.charCodeAt(i) !== 58 /* : prefix */) return false;
  const afterPrefix = line.indexOf(" ", i);
  if (afterPrefix < 0) return false;
  const commandEnd = line.indexOf(" ", afterPrefix + 1);
  const command = line.slice(afterPrefix + 1, commandEnd < 0 ? undefined : commandEnd).trimEnd();
  if (LISTINGS.has(command)) return true;
  if (!ABOUT_OTHERS.has(command)) return false;
  const bang = line.indexOf("!", i);
  const nickEnd = bang > 0 && bang < afterPrefix ? bang : afterPrefix;
  return line.slice(i + 1, nickEnd) !== ownNick;
}

/**
 * `buffer[start, end)` as latin1 text, by the buffer's native decoder: spreading the bytes into
 * String.fromCharCode made an iterator, its results and an argument list for every line read.
 */
function latin1(buffer: Uint8Array, start: number, end: number): string {
  return Buffer.isBuffer(buffer) ? buffer.toString("latin1", start, end) : Buffer.from(buffer.buffer, buffer.byteOffset + start, end - start).toString("latin1");
}

/** Whitespace that String.prototype.trimEnd removes, as latin1 bytes. */
const TRAILING_SPACE = new Set([0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0xa0]);
/** The longest command in ABOUT_OTHERS and LISTINGS. */
const LONGEST_COMMAND = 7;

/**
 * `isAboutOthers` read from the raw bytes `buffer[start, end)` (only its first `headBytes`,
 * each byte as a latin1 character, as `isAboutOthers(buffer.toString("latin1", ...))` would),
 * without making strings of it: in a channel of N puppets every JOIN reaches N sockets, and
 * each of them drops it here.
 */
export function isAboutOthersIn(buffer: Uint8Array, start: number, end: number, ownNick: string, headBytes = Infinity): boolean {
  const limit = Math.min(end, start + headBytes);
  const indexOf = (byte: number, from: number) => {
    for (let k = from; k < limit; k++) if (buffer[k] === byte) return k;
    return -1;
  };
  let i = start;
  if (buffer[start] === 64 /* @ tags */) {
    i = indexOf(0x20, start) + 1;
    if (i === 0) return false;
  }
  if (i >= limit || buffer[i] !== 58 /* : prefix */) return false;
  const afterPrefix = indexOf(0x20, i);
  if (afterPrefix < 0) return false;
  const commandEnd = indexOf(0x20, afterPrefix + 1);
  let last = commandEnd < 0 ? limit : commandEnd;
  while (last > afterPrefix + 1 && TRAILING_SPACE.has(buffer[last - 1])) last--;
  const length = last - (afterPrefix + 1);
  if (length > LONGEST_COMMAND) return false;
  const command = latin1(buffer, afterPrefix + 1, last);
  if (LISTINGS.has(command)) return true;
  if (!ABOUT_OTHERS.has(command)) return false;
  const bang = indexOf(0x21, i);
  const nickEnd = bang > start && bang < afterPrefix ? bang : afterPrefix;
  if (nickEnd - (i + 1) !== ownNick.length) return true;
  for (let k = 0; k < ownNick.length; k++) if (buffer[i + 1 + k] !== ownNick.charCodeAt(k)) return true;
  return false;
}

/** Channel lines a connection may drop when another connection of ours sent them (see IrcTransport). */
const SAID = ["PRIVMSG", "NOTICE", "TAGMSG"].map((command) => Buffer.from(command, "latin1"));
const BATCH_TAG = Buffer.from("batch=", "latin1");

/**
 * The sender's nick (as sent, not casefolded) of a raw PRIVMSG, NOTICE or TAGMSG to a channel
 * (its target starts with one of `chanTypes`) that is not part of a batch, read from the bytes
 * `buffer[start, end)` without decoding them; null for any other line, and for a nick that is
 * not plain ASCII (such lines take the full path).
 */
export function channelLineSender(buffer: Uint8Array, start: number, end: number, chanTypes: string, headBytes = Infinity): string | null {
  const limit = Math.min(end, start + headBytes);
  let i = start;
  if (buffer[start] === 64 /* @ tags */) {
    while (i < limit && buffer[i] !== 0x20) i++;
    if (hasTag(buffer, start + 1, i, BATCH_TAG)) return null; // replayed history: every line is bookkept
    i++;
  }
  if (i >= limit || buffer[i] !== 58 /* : prefix */) return null;
  const nickStart = i + 1;
  let nickEnd = -1;
  for (i = nickStart; i < limit && buffer[i] !== 0x20; i++) {
    const byte = buffer[i];
    if (byte >= 0x80) return null;
    if (nickEnd < 0 && (byte === 0x21 /* ! */ || byte === 0x40) /* @ */) nickEnd = i;
  }
  if (nickEnd < 0) nickEnd = i;
  if (nickEnd === nickStart || i >= limit) return null;
  const commandStart = i + 1;
  const targetAt = commandStart + saidLength(buffer, commandStart, limit) + 1;
  if (targetAt === commandStart + 1 || targetAt >= limit || !chanTypes.includes(String.fromCharCode(buffer[targetAt]))) return null;
  return latin1(buffer, nickStart, nickEnd);
}

const MSGID_TAG = Buffer.from("msgid=", "latin1");

/**
 * The target and msgid of a line `channelLineSender` found a sender in (a PRIVMSG, NOTICE or
 * TAGMSG to a channel, not in a batch: the caller has its sender already), read from the bytes
 * without decoding them; null for a line without tags or a msgid, and one whose msgid or target
 * is not plain ASCII or has escapes.
 */
export function channelLineTargetAndMsgid(buffer: Uint8Array, start: number, end: number, headBytes = Infinity): { target: string; msgid: string } | null {
  if (buffer[start] !== 64 /* @ tags */) return null;
  const limit = Math.min(end, start + headBytes);
  let tagsEnd = start;
  while (tagsEnd < limit && buffer[tagsEnd] !== 0x20) tagsEnd++;
  const msgid = tagValue(buffer, start + 1, tagsEnd, MSGID_TAG);
  if (msgid === null) return null;
  // Prefix, command, then the target (channelLineSender checked they are there).
  let i = tagsEnd + 1;
  for (let words = 0; words < 2; words++) {
    while (i < limit && buffer[i] !== 0x20) i++;
    i++;
  }
  const targetStart = i;
  while (i < end && buffer[i] > 0x20 && buffer[i] < 0x80) i++;
  if (i === targetStart || (i < end && buffer[i] !== 0x20 && buffer[i] !== 0x0d && buffer[i] !== 0x0a)) return null;
  return { target: latin1(buffer, targetStart, i), msgid };
}

/** The value of the tag `name` (which ends with "=") in `buffer[from, to)`; null if absent, empty, escaped or not ASCII. */
function tagValue(buffer: Uint8Array, from: number, to: number, name: Uint8Array): string | null {
  for (let k = from; k + name.length <= to; k++) {
    if (k !== from && buffer[k - 1] !== 0x3b /* ; */) continue;
    let same = true;
    for (let j = 0; j < name.length && same; j++) same = buffer[k + j] === name[j];
    if (!same) continue;
    let v = k + name.length;
    const valueStart = v;
    while (v < to && buffer[v] !== 0x3b) {
      if (buffer[v] === 0x5c /* \ */ || buffer[v] >= 0x80) return null;
      v++;
    }
    return v === valueStart ? null : latin1(buffer, valueStart, v);
  }
  return null;
}

/** The length of the SAID command at `at` (followed by a space), or 0. */
function saidLength(buffer: Uint8Array, at: number, limit: number): number {
  for (const command of SAID) {
    if (limit - at <= command.length || buffer[at + command.length] !== 0x20) continue;
    let k = 0;
    while (k < command.length && buffer[at + k] === command[k]) k++;
    if (k === command.length) return k;
  }
  return 0;
}

/** Whether the tags `buffer[from, to)` (without the "@") hold one starting with `name`. */
function hasTag(buffer: Uint8Array, from: number, to: number, name: Uint8Array): boolean {
  for (let k = from; k + name.length <= to; k++) {
    if (k !== from && buffer[k - 1] !== 0x3b /* ; */) continue;
    let same = true;
    for (let j = 0; j < name.length && same; j++) same = buffer[k + j] === name[j];
    if (same) return true;
  }
  return false;
}

/**
 * What a command needs before irc-framework may see it: how many parameters must be present,
 * how many of the first ones must be non-empty, and whether the prefix must name a nick.
 * irc-framework reads these positionally: a missing one throws in its handlers or, worse,
 * corrupts its state without throwing (a bare `001` sets our own nick to undefined, an empty
 * `NICK` of ours sets it to ""), so that every later line fails.
 */
const REQUIRED: Record<string, readonly [present: number, nonEmpty: number, nick: boolean]> = {
  JOIN: [1, 1, true],
  PART: [1, 1, true],
  KICK: [2, 2, true],
  NICK: [1, 1, true],
  QUIT: [0, 0, true],
  INVITE: [2, 2, true],
  TOPIC: [2, 1, true],
  AWAY: [0, 0, true],
  ACCOUNT: [1, 1, true],
  CHGHOST: [2, 2, true],
  SETNAME: [1, 0, true],
  MODE: [1, 1, false],
  PRIVMSG: [2, 1, false],
  NOTICE: [2, 1, false],
  TAGMSG: [1, 1, false],
  REDACT: [2, 2, true],
  BATCH: [1, 1, false],
  CAP: [2, 2, false],
  "001": [1, 1, false],
  "005": [2, 1, false],
  "332": [3, 2, false],
  "333": [3, 2, false],
  "353": [4, 3, false],
  "366": [2, 2, false],
};

/**
 * Why irc-framework must not see this decoded line, or null when it may. Tokenises the way
 * irc-framework's parser does (tags, prefix, command, middle parameters, a trailing one after
 * " :"), but only as far as the command's requirements in REQUIRED need.
 */
export function malformedReason(raw: string): string | null {
  const line = raw.replace(/^[\r\n]+|[\r\n]+$/g, "");
  let pos = 0;
  const skipSpaces = () => {
    while (line.charCodeAt(pos) === 32) pos++;
  };
  const word = () => {
    skipSpaces();
    const end = line.indexOf(" ", pos);
    const token = line.slice(pos, end < 0 ? line.length : end);
    pos = end < 0 ? line.length : end;
    return token;
  };
  if (line.charCodeAt(0) === 64 /* @ */) word();
  skipSpaces();
  let nick = "";
  if (line.charCodeAt(pos) === 58 /* : */) {
    const prefix = word().slice(1);
    // As irc-framework's parseMask: a prefix without "!" or "@" but with a dot is a server.
    const bang = prefix.indexOf("!");
    const at = prefix.indexOf("@");
    nick = bang >= 0 ? prefix.slice(0, bang) : at >= 0 ? prefix.slice(0, at) : prefix.includes(".") ? "" : prefix;
  }
  const command = word().toUpperCase();
  if (!command) return line.trim() ? "no command" : null; // irc-framework ignores empty lines
  const need = REQUIRED[command];
  if (!need) return null;
  const [present, nonEmpty, needsNick] = need;
  if (needsNick && !nick) return `${command} without a nick in its prefix`;
  if (command === "005") {
    const bad = isupportProblem(line.slice(pos).split(" :")[0]);
    if (bad) return bad;
  }
  for (let i = 0; i < present; i++) {
    skipSpaces();
    if (pos >= line.length) return `${command} with ${i} of its ${present} parameters`;
    let param: string;
    if (line.charCodeAt(pos) === 58 /* : trailing */) {
      param = line.slice(pos + 1);
      pos = line.length;
    } else param = word();
    if (i < nonEmpty && !param) return `${command} with an empty parameter ${i + 1}`;
  }
  return null;
}

/** ISUPPORT tokens that irc-framework splits (throwing half-way through the line without a value). */
const ISUPPORT_LISTS = new Set(["CHANTYPES", "STATUSMSG", "CHANMODES", "CLIENTTAGDENY"]);

/** Why a 005 line's middle parameters would corrupt the connection's idea of the server, or null. */
function isupportProblem(middle: string): string | null {
  for (const token of middle.split(" ")) {
    const eq = token.indexOf("=");
    const name = (eq < 0 ? token : token.slice(0, eq)).toUpperCase();
    if (ISUPPORT_LISTS.has(name) && eq < 0) return `ISUPPORT ${name} without a value`;
    // With no channel types, no channel line would be recognised as one.
    if (name === "CHANTYPES" && eq === token.length - 1) return "ISUPPORT CHANTYPES empty";
  }
  return null;
}

/** True when no case mapping changes `nick` (no A-Z, [, ], \\ or ~): most nicks, most lines. */
export function foldsToItself(nick: string): boolean {
  for (let i = 0; i < nick.length; i++) {
    const c = nick.charCodeAt(i);
    if ((c >= 65 && c <= 93) || c === 126) return false; // A-Z [ \ ]  and ~
  }
  return true;
}
