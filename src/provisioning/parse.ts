/**
 * Pure parsing for provisioning: the `!irc` room command and what an operator answers the
 * bridge bot by PM (`yes`, `no`, `!unlink #chan`, or anything else).
 */

export type RoomCommand =
  | { kind: "link"; networkId: string | null; channel: string; opNick: string | null; noApproval: boolean }
  | { kind: "unlink"; networkId: string | null; channel: string }
  | { kind: "links" }
  | { kind: "help" }
  | { kind: "invalid"; message: string };

export const ROOM_COMMAND_USAGE = [
  "!irc link <network> <#channel> [op nick]: bridge this room to an IRC channel, once a channel operator agrees (without an op nick: the channel's operators are listed)",
  "!irc unlink <network> <#channel>: stop bridging this room to a channel",
  "!irc links: the channels this room is bridged to",
  "(Bridge admins may add --no-approval to !irc link. With one network, it may be left out.)",
].join("\n");

const CHANNEL_START = /^[#&!+]/;

/**
 * `!irc <verb> ...` typed in a room; null when the text is not an `!irc` command. The network
 * may be left out (the caller fills it in when the bridge has one network): the first word
 * that looks like a channel is the channel.
 */
export function parseRoomCommand(body: string): RoomCommand | null {
  const words = body.trim().split(/\s+/);
  if (words[0]?.toLowerCase() !== "!irc") return null;
  const verb = (words[1] ?? "help").toLowerCase();
  const flags = words.slice(2).filter((w) => w.startsWith("--"));
  const args = words.slice(2).filter((w) => !w.startsWith("--"));
  const unknownFlag = flags.find((f) => f.toLowerCase() !== "--no-approval");
  if (unknownFlag) return { kind: "invalid", message: `unknown option ${unknownFlag}.\n\n${ROOM_COMMAND_USAGE}` };
  if (verb === "help") return { kind: "help" };
  if (verb === "links" || verb === "list") return args.length === 0 ? { kind: "links" } : invalid("!irc links takes nothing after it");
  if (verb !== "link" && verb !== "unlink") return invalid(`unknown command !irc ${verb}`);
  const [networkId, channel, ...rest] = args.length > 0 && CHANNEL_START.test(args[0]) ? [null, ...args] : args;
  if (!channel || !CHANNEL_START.test(channel)) return invalid(`which channel? e.g. !irc ${verb} <network> #channel`);
  if (verb === "unlink") {
    if (rest.length > 0 || flags.length > 0) return invalid("!irc unlink takes a network and a channel only");
    return { kind: "unlink", networkId, channel };
  }
  if (rest.length > 1) return invalid("!irc link takes one operator's nick at most");
  return { kind: "link", networkId, channel, opNick: rest[0] ?? null, noApproval: flags.length > 0 };
}

function invalid(message: string): RoomCommand {
  return { kind: "invalid", message: `${message}.\n\n${ROOM_COMMAND_USAGE}` };
}

export type OpAnswer = { kind: "yes" } | { kind: "no" } | { kind: "unlink"; channel: string | null } | { kind: "other" };

/** What an operator wrote to the bot: `yes`/`y`, `no`/`n` (any case, a trailing `.` or `!`), `!unlink [#chan]`, or other. */
export function parseOpAnswer(text: string): OpAnswer {
  const t = text.trim();
  if (/^(yes|y)[.!]*$/i.test(t)) return { kind: "yes" };
  if (/^(no|n)[.!]*$/i.test(t)) return { kind: "no" };
  const unlink = /^!unlink(?:\s+(\S+))?\s*$/i.exec(t);
  if (unlink) return { kind: "unlink", channel: unlink[1] ?? null };
  return { kind: "other" };
}

/**
 * Text of Matrix users' choosing (a room name, a user ID) in a private message from the bot to
 * an operator: no control characters (IRC formatting, CTCP's \x01) or bidi overrides, and at
 * most `max` characters, so it reads as what it is and stays on one line.
 */
export function plainForIrc(text: string, max: number): string {
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, "");
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}
