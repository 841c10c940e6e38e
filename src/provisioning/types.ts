/**
 * The contract between the two ways into provisioning (the `!irc` room command and the
 * provisioning HTTP API) and the one flow behind them (LinkRequests). Both callers speak only
 * this; the flow owns checks, the operator's approval, storage and the link itself.
 */

/** Error codes of the reference bridge's provisioning API, kept so its clients keep working. */
export type ProvisioningErrorCode =
  | "IRC_UNKNOWN_NETWORK"
  | "IRC_UNKNOWN_CHANNEL"
  | "IRC_EXISTING_MAPPING"
  | "IRC_EXISTING_REQUEST"
  | "IRC_NOT_ENOUGH_POWER"
  | "IRC_BAD_OPERATOR_TARGET"
  | "IRC_BRIDGE_AT_LIMIT"
  | "IRC_NOT_LINKED"
  | "M_BAD_JSON"
  | "M_UNKNOWN"
  | "M_AS_LIMIT_EXCEEDED";

/** A refusal the caller shows as is: the room command as a notice, the API as JSON with `status`. */
export class ProvisioningError extends Error {
  constructor(
    readonly code: ProvisioningErrorCode,
    message: string,
    /** The HTTP status the API answers with. */
    readonly status: number,
  ) {
    super(message);
    this.name = "ProvisioningError";
  }
}

export interface LinkRequestInput {
  networkId: string;
  /** The channel as typed (`#Channel`); the flow validates and casefolds it. */
  channel: string;
  roomId: string;
  /** The Matrix user asking; must be in the room with power to change its power levels. */
  userId: string;
  /** The operator to ask; null: the room command lists the ops instead of asking. */
  opNick: string | null;
  /** The channel's key (+k), if it has one. */
  key?: string | null;
  /** Link without asking an operator: bridge admins only. */
  noApproval?: boolean;
}

export type LinkOutcome =
  /** The operator was asked by PM; the requester hears the outcome in the room. */
  | { status: "pending"; opNick: string; expiresAt: number }
  /** Linked now (no approval needed). */
  | { status: "linked" };

export interface UnlinkInput {
  networkId: string;
  channel: string;
  roomId: string;
  /** Who asks: a room moderator or a bridge admin. */
  userId: string;
}

export interface LinkInfo {
  networkId: string;
  channel: string;
  roomId: string;
  origin: "config" | "portal" | "plumbed";
}

export interface NetworkInfo {
  networkId: string;
  name: string;
  /** The IRC server's host name (the reference API's `domain`). */
  domain: string;
  botUserId: string;
}

export interface LinkProvisioner {
  networks(): NetworkInfo[];
  /** The channel's operators as the bot sees them now (its roster, or WHO/NAMES without joining). */
  channelOps(networkId: string, channel: string): Promise<string[]>;
  requestLink(input: LinkRequestInput): Promise<LinkOutcome>;
  unlink(input: UnlinkInput): Promise<void>;
  listLinks(roomId: string): LinkInfo[];
  /** Linked rooms now and the limit (null: none), across the bridge. */
  limits(): { count: number; limit: number | null };
}
