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

export class ChannelRoster extends EventEmitter<{ change: [MembershipChange]; names: [string, string[]]; prefixes: [string] }> {
  /** Casefolded channel → casefolded nick → nick as written. */
  private readonly members = new Map<string, Map<string, string>>();
  /**
   * Casefolded channel → casefolded nick → the prefix modes the member holds (e.g. "ov"), from
   * NAMES (multi-prefix) and every MODE since; members without any are absent. Nick changes
   * carry them; part, quit and kick remove them. `prefixes` is emitted on every change.
   */
  private readonly prefixModes = new Map<string, Map<string, string>>();

  constructor(private readonly connection: IrcConnection) {
    super();
    connection.on("membership", (event) => {
      const fold = (s: string) => connection.casefold(s);
      switch (event.type) {
        case "names": {
          this.members.set(fold(event.channel), new Map(event.nicks.map((n) => [fold(n), n])));
          const held = new Map<string, string>();
          event.nicks.forEach((n, i) => event.modes[i] && held.set(fold(n), event.modes[i]));
          this.prefixModes.set(fold(event.channel), held);
          this.emit("names", event.channel, event.nicks);
          this.emit("prefixes", event.channel);
          break;
        }
        case "join":
          this.channel(event.channel).set(fold(event.nick), event.nick);
          this.emit("change", { type: "join", nick: event.nick, channel: event.channel });
          break;
        case "part":
        case "kick":
          this.channel(event.channel).delete(fold(event.nick));
          this.dropPrefixes(fold(event.channel), fold(event.nick), event.channel);
          this.emit("change", { type: "leave", nick: event.nick, channel: event.channel, reason: event.reason });
          break;
        case "quit":
          for (const [channel, nicks] of this.members) {
            if (!nicks.delete(fold(event.nick))) continue;
            this.emit("change", { type: "leave", nick: event.nick, channel, reason: event.reason });
            this.dropPrefixes(channel, fold(event.nick), channel);
          }
          break;
        case "nick":
          for (const [channel, nicks] of this.members) {
            if (nicks.delete(fold(event.nick))) {
              nicks.set(fold(event.newNick), event.newNick);
              const held = this.prefixModes.get(channel);
              const modes = held?.get(fold(event.nick));
              this.emit("change", { type: "rename", oldNick: event.nick, newNick: event.newNick, channel });
              if (held && modes) {
                held.delete(fold(event.nick));
                held.set(fold(event.newNick), modes);
                this.emit("prefixes", channel);
              }
            }
          }
          break;
      }
    });
    connection.on("channelMode", ({ channel, changes }) => this.onMode(channel, changes));
    connection.on("disconnected", () => {
      this.members.clear();
      this.prefixModes.clear();
    });
  }

  /** A MODE on a channel: prefix modes (those PREFIX offers) given to or taken from members. */
  private onMode(channel: string, changes: { mode: string; param: string | null }[]): void {
    const folded = this.connection.casefold(channel);
    const members = this.members.get(folded);
    if (!members) return;
    const offered = this.connection.prefixModes;
    let held = this.prefixModes.get(folded);
    if (!held) this.prefixModes.set(folded, (held = new Map()));
    let changed = false;
    for (const { mode, param } of changes) {
      const letter = mode[1];
      if (!param || !offered.includes(letter)) continue;
      const nick = this.connection.casefold(param);
      if (!members.has(nick)) continue; // a MODE about someone not here: ignored
      const before = held.get(nick) ?? "";
      const after = mode[0] === "+" ? (before.includes(letter) ? before : before + letter) : before.replace(letter, "");
      if (after === before) continue;
      if (after) held.set(nick, after);
      else held.delete(nick);
      changed = true;
    }
    if (changed) this.emit("prefixes", channel);
  }

  private dropPrefixes(foldedChannel: string, foldedNick: string, channel: string): void {
    if (this.prefixModes.get(foldedChannel)?.delete(foldedNick)) this.emit("prefixes", channel);
  }

  /** Whether the member list of a channel is known (the bot has its NAMES). */
  knows(channel: string): boolean {
    return this.members.has(this.connection.casefold(channel));
  }

  /** The prefix modes a member holds in a channel ("" for none). */
  prefixesOf(channel: string, nick: string): string {
    return this.prefixModes.get(this.connection.casefold(channel))?.get(this.connection.casefold(nick)) ?? "";
  }

  /** Members holding any prefix mode: nick as written → modes. */
  withPrefixes(channel: string): Map<string, string> {
    const folded = this.connection.casefold(channel);
    const members = this.members.get(folded);
    const out = new Map<string, string>();
    for (const [nick, modes] of this.prefixModes.get(folded) ?? []) out.set(members?.get(nick) ?? nick, modes);
    return out;
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
