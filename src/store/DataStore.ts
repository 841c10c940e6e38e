/**
 * What the bridge keeps between restarts. The NeDB implementation is the embedded default;
 * PostgreSQL (PgDataStore) implements the same interface for large deployments, and one
 * contract suite (spec/unit/storeContract.test.ts) holds both to it.
 */

/** A Matrix room linked to an IRC channel. `channel` is casefolded; `channelName` is as typed. */
export interface RoomLink {
  roomId: string;
  networkId: string;
  channel: string;
  channelName: string;
  origin: "config" | "portal" | "plumbed";
  /** The channel's key (+k), sealed with the credentials key; never stored in clear. */
  sealedKey?: string | null;
}

/** An IRC user's Matrix ghost and what the bridge has already set up for it. */
export interface GhostRecord {
  userId: string;
  networkId: string;
  nick: string;
  displayName: string | null;
}

/** A Matrix user's IRC identity on one network. */
export interface PuppetRecord {
  userId: string;
  networkId: string;
  /** The nick the user wants (the server may have given a fallback). */
  nick: string;
  /** Ident, stable and unique per network. */
  username: string;
  /** Source address from the network's IPv6 prefix, or null. */
  ipv6: string | null;
  /** Channels (as typed) the puppet was in, rejoined when it reconnects at start-up. */
  channels: string[];
  /** Last time the user used the bridge on this network (ms since the epoch). */
  lastActiveAt: number;
  /** The user's IRC password, sealed with the credentials key (never in clear), or null. */
  password: string | null;
  /** The account to log in as (SASL, NickServ); null: the nick. */
  account: string | null;
}

/** A Matrix user's own settings: their admin room and per-user feature switches. */
export interface UserRecord {
  userId: string;
  adminRoomId: string | null;
  features: Record<string, boolean>;
  /** IRC nicks (as typed) whose private messages the user does not want, per network id. */
  ignored?: Record<string, string[]>;
}

/** The room where a Matrix user and an IRC nick talk privately. `nick` is casefolded. */
export interface PmRoom {
  roomId: string;
  userId: string;
  networkId: string;
  nick: string;
  /** The nick as IRC writes it, when known. */
  nickName: string | null;
  /** When the bridge last invited the user back after they left (ms since the epoch). */
  reinvitedAt?: number | null;
}

/** A Matrix event and the IRC line(s) it is (msgid), for replies and edits across the bridge. */
export interface MessageLink {
  roomId: string;
  eventId: string;
  networkId: string;
  msgid: string;
  at: number;
}

/**
 * Chanop sync's memory of one room: the power levels entries the bridge set (so it moves only
 * those) and the channel modes it last applied per channel key (so a restart re-sends nothing
 * unchanged). Pairs, not objects: user IDs hold dots, which NeDB refuses in field names.
 */
export interface ChanopState {
  roomId: string;
  bridgeLevels: [string, number][];
  channelModes: [string, string][];
}

/** One event of an acknowledged transaction that the bridge has not finished handling. */
export interface PendingEvent {
  txnId: string;
  seq: number;
  event: Record<string, unknown>;
}

/**
 * A small record kept under a kind and a key, as JSON: the store for features whose data is a
 * handful of documents (pending link requests, per-channel positions, redacted media), so each
 * does not widen this interface and every engine stores them the same way. Not for hot paths
 * with many rows (message links and the journal have their own tables).
 */
export interface KeyedRecord<T> {
  kind: string;
  key: string;
  value: T;
  updatedAt: number;
}

export interface DataStore {
  open(): Promise<void>;
  close(): Promise<void>;

  getRoomLinks(): Promise<RoomLink[]>;
  upsertRoomLink(link: RoomLink): Promise<void>;
  removeRoomLink(roomId: string, networkId: string, channel: string): Promise<void>;

  getGhost(userId: string): Promise<GhostRecord | null>;
  upsertGhost(ghost: GhostRecord): Promise<void>;

  getPuppet(userId: string, networkId: string): Promise<PuppetRecord | null>;
  upsertPuppet(puppet: PuppetRecord): Promise<void>;
  getPuppets(networkId: string): Promise<PuppetRecord[]>;

  getUsers(): Promise<UserRecord[]>;
  upsertUser(user: UserRecord): Promise<void>;

  /** The PM room of a Matrix user and an IRC nick (casefolded), if any. */
  getPmRoom(userId: string, networkId: string, nick: string): Promise<PmRoom | null>;
  getPmRoomById(roomId: string): Promise<PmRoom | null>;
  /** Stores the PM room of a user and a nick, replacing an older one. */
  setPmRoom(pm: PmRoom): Promise<void>;

  getChanopStates(): Promise<ChanopState[]>;
  putChanopState(state: ChanopState): Promise<void>;

  putMessageLinks(links: MessageLink[]): Promise<void>;
  /** The engine stores links at once for the cost of one write call (no round trip): MessageLinks then writes each as it comes, with no timer. */
  readonly cheapLinkWrites?: boolean;
  getMessageLinkByEvent(eventId: string): Promise<MessageLink | null>;
  getMessageLinkByMsgid(networkId: string, msgid: string): Promise<MessageLink | null>;
  /** Forgets message links older than `maxAgeMs`. */
  pruneMessageLinks(maxAgeMs: number): Promise<number>;
  countMessageLinks(): Promise<number>;
  /** Forgets the oldest message links so that at most `keep` remain; returns how many went. */
  pruneOldestMessageLinks(keep: number): Promise<number>;

  /** Whether a transaction ID was seen before (handled or still pending). */
  hasTransaction(txnId: string): Promise<boolean>;
  /** Durably records a transaction and its events before it is acknowledged. */
  recordTransaction(txnId: string, events: Record<string, unknown>[]): Promise<void>;
  /** Marks one event handled; the transaction completes when its last event is. */
  markEventDone(txnId: string, seq: number): Promise<void>;
  /** Events acknowledged but not yet handled, oldest first: replayed at start-up. */
  getPendingEvents(): Promise<PendingEvent[]>;
  /** Forgets completed transactions older than `maxAgeMs`. */
  pruneTransactions(maxAgeMs: number): Promise<number>;

  /** The record of `kind` under `key`, or null. */
  getRecord<T>(kind: string, key: string): Promise<KeyedRecord<T> | null>;
  /** Stores (replaces) the record of `kind` under `key`; `value` must be JSON-serialisable. */
  putRecord<T>(kind: string, key: string, value: T): Promise<void>;
  /** Forgets a record; true if there was one. */
  deleteRecord(kind: string, key: string): Promise<boolean>;
  /** Every record of `kind`, oldest update first. */
  listRecords<T>(kind: string): Promise<KeyedRecord<T>[]>;
}
