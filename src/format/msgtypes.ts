import type { IrcMessageKind } from "../irc/IrcConnection.js";

/** The Matrix msgtype for each kind of IRC line, and back (other msgtypes have no IRC kind). */
export const MSGTYPE_OF_KIND: Record<IrcMessageKind, string> = { privmsg: "m.text", notice: "m.notice", action: "m.emote" };

export function ircKindOf(msgtype: unknown): IrcMessageKind | undefined {
  return (Object.keys(MSGTYPE_OF_KIND) as IrcMessageKind[]).find((kind) => MSGTYPE_OF_KIND[kind] === msgtype);
}
