/**
 * Who is in which channel, as the bridge bot's connection sees it: one shared view per
 * network, never a copy per puppet. It turns IRC's JOIN/PART/KICK/QUIT/NICK (where QUIT and
 * NICK name no channel) into per-channel membership changes.
 */
import { EventEmitter } from "node:events";
import type { IrcConnection } from "./IrcConnection.js";

export type MembershipChange =
  | { type: "join"; nick: string; channel: string }
  | { type: "leave"; nick: string; channel: string; reason: string }
  | { type: "rename"; oldNick: string; newNick: string; channel: string };

export class ChannelRoster extends EventEmitter<{ change: [MembershipChange]; names: [string, string[]] }> {
  /** Casefolded channel → casefolded nick → nick as written. */
  private readonly members = new Map<string, Map<string, string>>();

  constructor(private readonly connection: IrcConnection) {
    super();
    connection.on("membership", (event) => {
      const fold = (s: string) => connection.casefold(s);
      switch (event.type) {
        case "names":
          this.members.set(fold(event.channel), new Map(event.nicks.map((n) => [fold(n), n])));
          this.emit("names", event.channel, event.nicks);
          break;
        case "join":
          this.channel(event.channel).set(fold(event.nick), event.nick);
          this.emit("change", { type: "join", nick: event.nick, channel: event.channel });
          break;
        case "part":
        case "kick":
          this.channel(event.channel).delete(fold(event.nick));
          this.emit("change", { type: "leave", nick: event.nick, channel: event.channel, reason: event.reason });
          break;
        case "quit":
          for (const [channel, nicks] of this.members) {
            if (nicks.delete(fold(event.nick))) this.emit("change", { type: "leave", nick: event.nick, channel, reason: event.reason });
          }
          break;
        case "nick":
          for (const [channel, nicks] of this.members) {
            if (nicks.delete(fold(event.nick))) {
              nicks.set(fold(event.newNick), event.newNick);
              this.emit("change", { type: "rename", oldNick: event.nick, newNick: event.newNick, channel });
            }
          }
          break;
      }
    });
    connection.on("disconnected", () => this.members.clear());
  }

  /** The nicks in a channel, as written. */
  membersOf(channel: string): string[] {
    return [...(this.members.get(this.connection.casefold(channel))?.values() ?? [])];
  }

  /** A nick as the channel's member list writes it, or as given when not there. */
  nickIn(channel: string, nick: string): string {
    return this.members.get(this.connection.casefold(channel))?.get(this.connection.casefold(nick)) ?? nick;
  }

  private channel(name: string): Map<string, string> {
    const folded = this.connection.casefold(name);
    let nicks = this.members.get(folded);
    if (!nicks) this.members.set(folded, (nicks = new Map()));
    return nicks;
  }
}
