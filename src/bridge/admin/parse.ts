/**
 * Reading an admin-room command: `!name [network] rest...`. The network argument is taken
 * when the first word names a configured network; with several networks and none named,
 * the command cannot know which one is meant.
 */
import { parseCommandLine } from "../../irc/IrcWriter.js";

export interface ParsedCommand {
  name: string;
  /** Everything after the command word (and the network, if one was named), trimmed. */
  rest: string;
  networkId: string | null;
}

/** Splits `!name rest`; null when the text is not a command. */
export function parseCommand(body: string, networkIds: string[]): ParsedCommand | null {
  const match = /^!(\S+)(?:[ \t]+([\s\S]*))?$/.exec(body.trim());
  if (!match) return null;
  const name = match[1].toLowerCase();
  let rest = (match[2] ?? "").trim();
  let networkId: string | null = null;
  const first = rest.split(/[ \t]+/)[0]?.toLowerCase();
  if (first && networkIds.includes(first)) {
    networkId = first;
    rest = rest.slice(first.length).trim();
  }
  return { name, rest, networkId };
}

/** The words of an argument string. */
export function words(rest: string): string[] {
  return rest.split(/[ \t]+/).filter(Boolean);
}

/** Why a raw IRC line from `!cmd` is refused, or null if it may be sent. */
export function rawCommandRefusal(line: string, isBridgedChannel: (channel: string) => boolean): string | null {
  if (/[\r\n\0]/.test(line)) return "a command must be one line, without line breaks or NUL characters";
  // Judged as the writer will send it (a leading ':' makes the rest one parameter: `JOIN :#chan`).
  const parsed = parseCommandLine(line);
  const word = parsed.command;
  const target = (parsed.words[0] ?? parsed.text ?? "").split(",").map((t) => t.replace(/^[~&@%+]+(?=[#&!+])/, "")).join(",");
  if (!word) return "give a command, e.g. !cmd AWAY :brb";
  if (!/^[A-Za-z]+$/.test(word)) return `${JSON.stringify(word)} is not an IRC command word (letters only)`;
  const command = word.toUpperCase();
  const refused: Record<string, string> = {
    QUIT: "use !quit or !reconnect",
    NICK: "use !nick, so the bridge keeps your nick",
    PASS: "use !storepass",
    USER: "your username is set by the bridge; use !username for your account",
    CAP: "the bridge negotiates capabilities itself",
    AUTHENTICATE: "use !username and !storepass",
    SERVER: "not a client command",
    WEBIRC: "not a client command",
  };
  if (refused[command]) return `${command} would break the bridge's view of your connection: ${refused[command]}`;
  if (["JOIN", "PART", "PRIVMSG", "NOTICE"].includes(command)) {
    if (command === "JOIN" && target === "0") return "JOIN 0 would leave every channel: use !quit or the rooms";
    const bridged = (target ?? "").split(",").filter((c) => isBridgedChannel(c));
    if (bridged.length > 0) return `${bridged.join(", ")} ${bridged.length > 1 ? "are" : "is"} bridged: ${command === "JOIN" ? "join its room, or use !join" : command === "PART" ? "leave its room, or use !part" : "speak in its room"}`;
  }
  return null;
}
