/** What a NetworkPool tells the bridge (its events) and asks of it (its hooks). */
import type { MembershipChange } from "./ChannelRoster.js";
import type { IrcMessage, IrcRedaction, IrcTagMessage } from "./IrcConnection.js";

/** What the pool asks of the rest of the bridge. */
export interface PoolHooks {
  /** A Matrix user's display name, asked only when the nick template uses $DISPLAY. */
  displayNameOf(userId: string): Promise<string | null>;
  /** A stored password in clear, or null when it cannot be opened (no key, another key). */
  openPassword(sealed: string): string | null;
  /** Whether a channel is still linked to a room (the bot rejoins those it is kicked from). */
  isBridged(channelName: string): boolean;
}

export const NO_HOOKS: PoolHooks = { displayNameOf: async () => null, openPassword: () => null, isBridged: () => true };

export interface PoolEvents {
  /** A channel line, once, whichever connection saw it first. */
  channelLine: [IrcMessage];
  /** Something a Matrix user should be told about their connection. */
  userNotice: [string, string];
  /**
   * News about a user's connection (dropped, back, nick changed by the server, the server's
   * notices): for their admin room only. In a network-wide outage every user has some at once.
   */
  connectionNotice: [string, string];
  /** An IRC user joined, left or changed nick in a channel (seen by the bot). */
  membership: [MembershipChange];
  /** The full member list of a channel, when the bot joins it. */
  names: [string, string[]];
  /** A channel's topic changed on IRC (seen by the bot). */
  topic: [{ channel: string; topic: string; nick: string }];
  /** A TAGMSG (reaction, typing) from an IRC user, as the bot heard it (the bridge's own nicks included). */
  tagmsg: [IrcTagMessage];
  /** A REDACT from an IRC user, as the bot heard it. */
  redact: [IrcRedaction];
  /** A private message to a Matrix user's puppet (user ID, message). */
  privateLine: [string, IrcMessage];
  /** A private message to the bridge bot itself (e.g. an operator answering a link request). */
  botPrivateLine: [IrcMessage];
  /** A Matrix user's puppet was kicked from a channel on IRC. */
  puppetKicked: [string, { channel: string; by: string; reason: string }];
  /** The bot was kicked from a channel and IRC will not let it back in (channel, reason). */
  botExcluded: [string, string];
  /** Someone on IRC invited a Matrix user's puppet to a channel. */
  puppetInvited: [string, { channel: string; by: string }];
}
