/**
 * IRC's answers, as data: one table from numeric to what it means for the bridge. Joins,
 * messages, commands and registration all read it, so a numeric the IRC library does not map
 * (477 "register your nick", 489 "+z", 520 "opers only", ...) still ends the thing it
 * answers at once, with words a user can act on, instead of becoming a timeout that holds a
 * queue.
 */

/**
 * Parsed numerics are emitted on the IRC library's client under this name (by IrcConnection),
 * so `exchange` can wait for them beside the library's own events.
 */
export const NUMERIC_EVENT = "bridge numeric";

/** What a numeric answers. */
export type NumericRole =
  /** A JOIN failed. */
  | "join"
  /** A PRIVMSG/NOTICE/TAGMSG was refused. */
  | "send"
  /** A channel command (TOPIC, KICK, MODE) was refused. */
  | "command"
  /** A NICK was refused. */
  | "nick"
  /** Registration was refused for good. */
  | "register";

export interface NumericMeaning {
  code: string;
  name: string;
  role: NumericRole;
  /** True when trying again unchanged is pointless (banned, bad key); false for "try later". */
  fatal: boolean;
  /** Which parameter names the channel or nick it is about (after our own nick, at 0). */
  target: number;
  /** The words the user is told; `reason` is the server's own text, `network` the network's name. */
  explain(target: string, reason: string, params: string[], network: string): string;
}

const because = (text: string) => (target: string, reason: string, _params: string[], network: string) =>
  `${text.split("$T").join(target).split("$N").join(network)} (the server said: ${reason})`;

const entries: [string, string, NumericRole, boolean, number, NumericMeaning["explain"]][] = [
  // Joins
  ["403", "ERR_NOSUCHCHANNEL", "join", true, 1, because("$T does not exist or is not a valid channel name")],
  ["405", "ERR_TOOMANYCHANNELS", "join", true, 1, because("you are in too many channels to join $T")],
  ["437", "ERR_UNAVAILRESOURCE", "join", false, 1, because("$T is temporarily unavailable; try again later")],
  ["470", "ERR_LINKCHANNEL", "join", true, 1, (target, reason, params) => `${target} forwards to ${params[2] ?? "another channel"}; join that one instead (the server said: ${reason})`],
  ["471", "ERR_CHANNELISFULL", "join", true, 1, because("$T is full (+l)")],
  ["473", "ERR_INVITEONLYCHAN", "join", true, 1, because("$T is invite-only (+i): ask an operator there to invite you")],
  ["474", "ERR_BANNEDFROMCHAN", "join", true, 1, because("you are banned from $T (+b)")],
  ["475", "ERR_BADCHANNELKEY", "join", true, 1, because("$T needs a key (+k), and the one given was wrong or missing")],
  ["476", "ERR_BADCHANMASK", "join", true, 1, because("$T is not a valid channel name")],
  ["477", "ERR_NEEDREGGEDNICK", "join", true, 1, because("$T only lets in users logged in to a registered nick: register with NickServ, then !storepass")],
  ["479", "ERR_BADCHANNAME", "join", true, 1, because("$T is not a channel name the server allows")],
  ["480", "ERR_THROTTLE", "join", false, 1, because("$T is being joined too fast (+j); try again in a moment")],
  ["489", "ERR_SECUREONLYCHAN", "join", true, 1, because("$T only lets in users connected with TLS (+z)")],
  ["520", "ERR_OPERONLY", "join", true, 1, because("$T is for IRC operators only")],
  // Messages
  ["401", "ERR_NOSUCHNICK", "send", true, 1, (target, _reason, _params, network) => `${target} is not on ${network} right now`],
  ["404", "ERR_CANNOTSENDTOCHAN", "send", true, 1, because("$T refused it")],
  ["407", "ERR_TOOMANYTARGETS", "send", true, 1, because("the server refused it for $T")],
  ["412", "ERR_NOTEXTTOSEND", "send", true, 0, because("the message was empty")],
  ["486", "ERR_NONONREG", "send", true, 1, because("$T only accepts messages from users logged in to a registered nick")],
  ["492", "ERR_NOCTCP", "send", true, 1, because("$T does not accept CTCP")],
  ["531", "ERR_CANNOTSENDTOUSER", "send", true, 1, because("$T does not accept your messages")],
  ["716", "ERR_TARGUMODEG", "send", true, 1, because("$T only accepts messages from people they allowed (+g)")],
  // Channel commands
  ["441", "ERR_USERNOTINCHANNEL", "command", true, 2, because("that nick is not in $T")],
  ["442", "ERR_NOTONCHANNEL", "command", true, 1, because("you are not in $T")],
  ["482", "ERR_CHANOPRIVSNEEDED", "command", true, 1, because("you are not a channel operator in $T")],
  // Nicks
  ["431", "ERR_NONICKNAMEGIVEN", "nick", true, 0, because("no nick was given")],
  ["432", "ERR_ERRONEUSNICKNAME", "nick", true, 1, because("$T is not a nick the server accepts")],
  ["433", "ERR_NICKNAMEINUSE", "nick", true, 1, because("$T is already in use")],
  ["435", "ERR_BANNICKCHANGE", "nick", true, 1, because("you cannot change nick while banned in a channel you are in")],
  ["436", "ERR_NICKCOLLISION", "nick", true, 1, because("$T collided with another user")],
  ["438", "ERR_NICKTOOFAST", "nick", false, 1, because("nick changes are too fast; try again in a moment")],
  ["447", "ERR_NONICKCHANGE", "nick", true, 1, because("nick changes are not allowed here")],
  // Registration
  ["463", "ERR_NOPERMFORHOST", "register", true, 0, because("the server does not accept connections from the bridge's address")],
  ["464", "ERR_PASSWDMISMATCH", "register", true, 0, because("the password was refused")],
  ["465", "ERR_YOUREBANNEDCREEP", "register", true, 0, because("the bridge's connection is banned from the server")],
];

export const NUMERICS: ReadonlyMap<string, NumericMeaning> = new Map(
  entries.map(([code, name, role, fatal, target, explain]) => [code, { code, name, role, fatal, target, explain }]),
);

/** A numeric reply read from a raw line: its code, parameters (ours first), and meaning if known. */
export interface NumericReply {
  code: string;
  params: string[];
  meaning: NumericMeaning | undefined;
  /** The channel or nick it is about ("" when none). */
  target: string;
  /** The server's own words (the last parameter). */
  reason: string;
}

/**
 * Reads a numeric reply from a raw line; null for anything else. Cheap on other lines: only
 * lines whose command is three digits are split.
 */
export function readNumeric(line: string): NumericReply | null {
  let i = 0;
  if (line.charCodeAt(0) === 64 /* @ */) i = line.indexOf(" ") + 1;
  if (line.charCodeAt(i) === 58 /* : */) i = line.indexOf(" ", i) + 1;
  const code = line.slice(i, i + 3);
  if (!/^\d{3}$/.test(code) || (line.length > i + 3 && line[i + 3] !== " ")) return null;
  const rest = line.slice(i + 4).replace(/\r?\n$/, "");
  const colon = rest.startsWith(":") ? 0 : rest.indexOf(" :");
  const middle = colon >= 0 ? rest.slice(0, colon) : rest;
  const params = middle.split(" ").filter(Boolean);
  if (colon >= 0) params.push(rest.slice(colon + (colon === 0 ? 1 : 2)));
  const meaning = NUMERICS.get(code);
  const target = meaning && meaning.target > 0 ? (params[meaning.target] ?? "") : "";
  return { code, params, meaning, target, reason: params[params.length - 1] ?? code };
}

/** The user-facing words of a known numeric reply. */
export function explainNumeric(reply: NumericReply, network = "IRC"): string {
  return reply.meaning ? reply.meaning.explain(reply.target, reply.reason, reply.params, network) : reply.reason;
}
