/**
 * The PostgreSQL store (`store.engine: postgres`), for large bridges: nothing is held in memory
 * but what a caller asked for, and the journal's promise holds across power loss, because a
 * transaction is committed (synchronous_commit, the server's default) before the homeserver
 * gets its 200. The schema is migrated at open (pg/migrations.ts).
 *
 * Semantics follow NeDB's, which the rest of the bridge was written against: upserts replace
 * the whole record, absent optional fields read back as null, pending events come back in the
 * order their transactions were received, keyed records oldest update first.
 */
import pg from "pg";
import type { ChanopState, DataStore, GhostRecord, KeyedRecord, MessageLink, PendingEvent, PmRoom, PuppetRecord, RoomLink, UserRecord } from "./DataStore.js";
import type { JournalCopy } from "./NedbDataStore.js";
import { migrate } from "./pg/migrations.js";
import { deleteInBatches, int8AsNumber } from "./pg/sql.js";
import { getLogger } from "../logging.js";

const log = getLogger("store/pg");

type Row = Record<string, unknown>;
const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

function toPuppet(r: Row): PuppetRecord {
  return {
    userId: String(r.user_id), networkId: String(r.network_id), nick: String(r.nick), username: String(r.username), ipv6: str(r.ipv6),
    channels: (r.channels as string[]) ?? [], lastActiveAt: Number(r.last_active_at ?? 0), password: str(r.password), account: str(r.account),
  };
}

function toPm(r: Row | undefined): PmRoom | null {
  if (!r) return null;
  return { roomId: String(r.room_id), userId: String(r.user_id), networkId: String(r.network_id), nick: String(r.nick), nickName: str(r.nick_name), reinvitedAt: r.reinvited_at === null ? null : Number(r.reinvited_at) };
}

function toLink(r: Row | undefined): MessageLink | null {
  if (!r) return null;
  return { roomId: String(r.room_id), eventId: String(r.event_id), networkId: String(r.network_id), msgid: String(r.msgid), at: Number(r.at) };
}

function toRecord<T>(r: Row): KeyedRecord<T> {
  return { kind: String(r.kind), key: String(r.key), value: JSON.parse(String(r.value)) as T, updatedAt: Number(r.updated_at) };
}

/** Longest a statement may run (migrations and batch prunes included: they are batched small). */
const QUERY_TIMEOUT_MS = 60_000;

export class PgDataStore implements DataStore {
  private readonly pool: pg.Pool;
  private lastRecordUpdate = 0;

  constructor(connectionString: string, poolSize = 10) {
    // Every call has a ceiling (a half-open connection must not hang the queues behind it) and
    // dead peers are found by TCP keepalive.
    this.pool = new pg.Pool({
      connectionString,
      max: poolSize,
      types: int8AsNumber,
      connectionTimeoutMillis: 30_000,
      idleTimeoutMillis: 60_000,
      statement_timeout: QUERY_TIMEOUT_MS,
      query_timeout: QUERY_TIMEOUT_MS + 5_000,
      keepAlive: true,
    });
    // An idle connection dropped by the server must not crash the process; the pool replaces it.
    this.pool.on("error", (err) => log.warn("A PostgreSQL connection failed while idle", { error: err.message }));
  }

  private async q(sql: string, params: unknown[] = []): Promise<Row[]> {
    return (await this.pool.query(sql, params)).rows as Row[];
  }

  async open(): Promise<void> {
    const client = await this.pool.connect();
    try {
      const applied = await migrate(client);
      if (applied.length > 0) log.info("Migrated the PostgreSQL schema", { versions: applied });
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  async getRoomLinks(): Promise<RoomLink[]> {
    const rows = await this.q("SELECT room_id, network_id, channel, channel_name, origin, sealed_key FROM room_links ORDER BY n");
    return rows.map((r) => ({ roomId: String(r.room_id), networkId: String(r.network_id), channel: String(r.channel), channelName: String(r.channel_name), origin: r.origin as RoomLink["origin"], sealedKey: str(r.sealed_key) }));
  }

  async upsertRoomLink(l: RoomLink): Promise<void> {
    await this.q(
      `INSERT INTO room_links (room_id, network_id, channel, channel_name, origin, sealed_key) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (room_id, network_id, channel) DO UPDATE SET channel_name = EXCLUDED.channel_name, origin = EXCLUDED.origin, sealed_key = EXCLUDED.sealed_key`,
      [l.roomId, l.networkId, l.channel, l.channelName, l.origin, l.sealedKey ?? null],
    );
  }

  async removeRoomLink(roomId: string, networkId: string, channel: string): Promise<void> {
    await this.q("DELETE FROM room_links WHERE room_id = $1 AND network_id = $2 AND channel = $3", [roomId, networkId, channel]);
  }

  async getGhost(userId: string): Promise<GhostRecord | null> {
    const [r] = await this.q("SELECT user_id, network_id, nick, display_name FROM ghosts WHERE user_id = $1", [userId]);
    return r ? { userId: String(r.user_id), networkId: String(r.network_id), nick: String(r.nick), displayName: str(r.display_name) } : null;
  }

  async upsertGhost(g: GhostRecord): Promise<void> {
    await this.q(
      `INSERT INTO ghosts (user_id, network_id, nick, display_name) VALUES ($1, $2, $3, $4)
       ON CONFLICT (user_id) DO UPDATE SET network_id = EXCLUDED.network_id, nick = EXCLUDED.nick, display_name = EXCLUDED.display_name`,
      [g.userId, g.networkId, g.nick, g.displayName ?? null],
    );
  }

  async getPuppet(userId: string, networkId: string): Promise<PuppetRecord | null> {
    const [r] = await this.q("SELECT * FROM puppets WHERE user_id = $1 AND network_id = $2", [userId, networkId]);
    return r ? toPuppet(r) : null;
  }

  async getPuppets(networkId: string): Promise<PuppetRecord[]> {
    return (await this.q("SELECT * FROM puppets WHERE network_id = $1", [networkId])).map(toPuppet);
  }

  async upsertPuppet(p: PuppetRecord): Promise<void> {
    await this.q(
      `INSERT INTO puppets (user_id, network_id, nick, username, ipv6, channels, last_active_at, password, account) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (user_id, network_id) DO UPDATE SET nick = EXCLUDED.nick, username = EXCLUDED.username, ipv6 = EXCLUDED.ipv6, channels = EXCLUDED.channels,
         last_active_at = EXCLUDED.last_active_at, password = EXCLUDED.password, account = EXCLUDED.account`,
      [p.userId, p.networkId, p.nick, p.username, p.ipv6 ?? null, p.channels ?? [], p.lastActiveAt ?? 0, p.password ?? null, p.account ?? null],
    );
  }

  async getUsers(): Promise<UserRecord[]> {
    const rows = await this.q("SELECT user_id, admin_room_id, features, ignored FROM users");
    return rows.map((r) => ({ userId: String(r.user_id), adminRoomId: str(r.admin_room_id), features: JSON.parse(String(r.features)) as Record<string, boolean>, ignored: JSON.parse(String(r.ignored)) as Record<string, string[]> }));
  }

  async upsertUser(u: UserRecord): Promise<void> {
    await this.q(
      `INSERT INTO users (user_id, admin_room_id, features, ignored) VALUES ($1, $2, $3, $4)
       ON CONFLICT (user_id) DO UPDATE SET admin_room_id = EXCLUDED.admin_room_id, features = EXCLUDED.features, ignored = EXCLUDED.ignored`,
      [u.userId, u.adminRoomId ?? null, JSON.stringify(u.features ?? {}), JSON.stringify(u.ignored ?? {})],
    );
  }

  async getPmRoom(userId: string, networkId: string, nick: string): Promise<PmRoom | null> {
    return toPm((await this.q("SELECT * FROM pm_rooms WHERE user_id = $1 AND network_id = $2 AND nick = $3", [userId, networkId, nick]))[0]);
  }

  async getPmRoomById(roomId: string): Promise<PmRoom | null> {
    return toPm((await this.q("SELECT * FROM pm_rooms WHERE room_id = $1 LIMIT 1", [roomId]))[0]);
  }

  async setPmRoom(pm: PmRoom): Promise<void> {
    await this.q(
      `INSERT INTO pm_rooms (user_id, network_id, nick, room_id, nick_name, reinvited_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (user_id, network_id, nick) DO UPDATE SET room_id = EXCLUDED.room_id, nick_name = EXCLUDED.nick_name, reinvited_at = EXCLUDED.reinvited_at`,
      [pm.userId, pm.networkId, pm.nick, pm.roomId, pm.nickName ?? null, pm.reinvitedAt ?? null],
    );
  }

  async getChanopStates(): Promise<ChanopState[]> {
    const rows = await this.q("SELECT room_id, bridge_levels, channel_modes FROM chanop_states");
    return rows.map((r) => ({ roomId: String(r.room_id), bridgeLevels: JSON.parse(String(r.bridge_levels)) as [string, number][], channelModes: JSON.parse(String(r.channel_modes)) as [string, string][] }));
  }

  async putChanopState(s: ChanopState): Promise<void> {
    await this.q(
      `INSERT INTO chanop_states (room_id, bridge_levels, channel_modes) VALUES ($1, $2, $3)
       ON CONFLICT (room_id) DO UPDATE SET bridge_levels = EXCLUDED.bridge_levels, channel_modes = EXCLUDED.channel_modes`,
      [s.roomId, JSON.stringify(s.bridgeLevels), JSON.stringify(s.channelModes)],
    );
  }

  async putMessageLinks(links: MessageLink[]): Promise<void> {
    if (links.length === 0) return;
    // One statement for the batch; a link already stored (a copy, a retried batch) is kept.
    await this.q(
      `INSERT INTO message_links (room_id, event_id, network_id, msgid, at)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[]) ON CONFLICT DO NOTHING`,
      [links.map((l) => l.roomId), links.map((l) => l.eventId), links.map((l) => l.networkId), links.map((l) => l.msgid), links.map((l) => l.at)],
    );
  }

  async getMessageLinkByEvent(eventId: string): Promise<MessageLink | null> {
    return toLink((await this.q("SELECT * FROM message_links WHERE event_id = $1 ORDER BY n LIMIT 1", [eventId]))[0]);
  }

  async getMessageLinkByMsgid(networkId: string, msgid: string): Promise<MessageLink | null> {
    return toLink((await this.q("SELECT * FROM message_links WHERE network_id = $1 AND msgid = $2 ORDER BY n LIMIT 1", [networkId, msgid]))[0]);
  }

  async pruneMessageLinks(maxAgeMs: number): Promise<number> {
    return deleteInBatches(this.pool, "message_links", "at < $1", [Date.now() - maxAgeMs]);
  }

  async countMessageLinks(): Promise<number> {
    return Number((await this.q("SELECT count(*) AS n FROM message_links"))[0].n);
  }

  async pruneOldestMessageLinks(keep: number): Promise<number> {
    const excess = (await this.countMessageLinks()) - keep;
    if (excess <= 0) return 0;
    // The time of the newest link to go (by the `at` index); links of that same millisecond
    // go too, as with NeDB, so a few more than asked may go.
    const [cut] = await this.q("SELECT at FROM message_links ORDER BY at OFFSET $1 LIMIT 1", [excess - 1]);
    return cut ? deleteInBatches(this.pool, "message_links", "at <= $1", [cut.at]) : 0;
  }

  async hasTransaction(txnId: string): Promise<boolean> {
    return (await this.q("SELECT 1 FROM journal_txns WHERE txn_id = $1", [txnId])).length > 0;
  }

  async recordTransaction(txnId: string, events: Record<string, unknown>[]): Promise<void> {
    // One statement, so one database transaction, committed when the query returns: the
    // transaction row and its events exist together or not at all (no torn writes to repair).
    const now = Date.now();
    await this.q(
      `WITH t AS (
         INSERT INTO journal_txns (txn_id, received_at, completed_at, pending) VALUES ($1, $2, $3, $4)
         ON CONFLICT (txn_id) DO NOTHING RETURNING n)
       INSERT INTO journal_events (txn_id, seq, txn_n, received_at, event)
       SELECT $1, e.seq - 1, t.n, $2, e.event FROM t, unnest($5::text[]) WITH ORDINALITY AS e(event, seq)`,
      [txnId, now, events.length === 0 ? now : null, events.length, events.map((e) => JSON.stringify(e))],
    );
  }

  async markEventDone(txnId: string, seq: number): Promise<void> {
    // One statement: the event row goes, and the transaction's count of pending events drops
    // (row-locked, so two events finishing together both count); at 0 it is complete.
    await this.q(
      `WITH d AS (DELETE FROM journal_events WHERE txn_id = $1 AND seq = $2 RETURNING 1)
       UPDATE journal_txns SET pending = pending - 1, completed_at = CASE WHEN pending <= 1 THEN $3::bigint ELSE completed_at END
       WHERE txn_id = $1 AND EXISTS (SELECT 1 FROM d)`,
      [txnId, seq, Date.now()],
    );
  }

  async getPendingEvents(): Promise<PendingEvent[]> {
    const rows = await this.q("SELECT txn_id, seq, event FROM journal_events ORDER BY txn_n, seq");
    return rows.map((r) => ({ txnId: String(r.txn_id), seq: Number(r.seq), event: JSON.parse(String(r.event)) as Record<string, unknown> }));
  }

  async pruneTransactions(maxAgeMs: number): Promise<number> {
    return deleteInBatches(this.pool, "journal_txns", "completed_at < $1", [Date.now() - maxAgeMs]);
  }

  /** For migrate-store: a transaction with its pending events, kept if already there. */
  async importTransaction(t: JournalCopy): Promise<void> {
    const completedAt = t.events.length === 0 ? (t.completedAt ?? t.receivedAt) : null;
    await this.q(
      `WITH t AS (
         INSERT INTO journal_txns (txn_id, received_at, completed_at, pending) VALUES ($1, $2, $3, $4)
         ON CONFLICT (txn_id) DO NOTHING RETURNING n)
       INSERT INTO journal_events (txn_id, seq, txn_n, received_at, event)
       SELECT $1, e.seq, t.n, $2, e.event FROM t, unnest($5::int[], $6::text[]) AS e(seq, event)`,
      [t.txnId, t.receivedAt, completedAt, t.events.length, t.events.map((e) => e.seq), t.events.map((e) => JSON.stringify(e.event))],
    );
  }

  /** For migrate-store: a keyed record with its own update time. */
  async importRecord(r: KeyedRecord<unknown>): Promise<void> {
    await this.q(
      `INSERT INTO records (kind, key, value, updated_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (kind, key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`,
      [r.kind, r.key, JSON.stringify(r.value), r.updatedAt],
    );
  }

  async getRecord<T>(kind: string, key: string): Promise<KeyedRecord<T> | null> {
    const [r] = await this.q("SELECT kind, key, value, updated_at FROM records WHERE kind = $1 AND key = $2", [kind, key]);
    return r ? toRecord<T>(r) : null;
  }

  async putRecord<T>(kind: string, key: string, value: T): Promise<void> {
    this.lastRecordUpdate = Math.max(Date.now(), this.lastRecordUpdate + 1);
    // A replaced record takes a new place in the order (n), as a fresh update should.
    await this.q(
      `INSERT INTO records (kind, key, value, updated_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (kind, key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at, n = nextval('records_order')`,
      [kind, key, JSON.stringify(value), this.lastRecordUpdate],
    );
  }

  async deleteRecord(kind: string, key: string): Promise<boolean> {
    return (await this.pool.query("DELETE FROM records WHERE kind = $1 AND key = $2", [kind, key])).rowCount! > 0;
  }

  async listRecords<T>(kind: string): Promise<KeyedRecord<T>[]> {
    return (await this.q("SELECT kind, key, value, updated_at FROM records WHERE kind = $1 ORDER BY n", [kind])).map((r) => toRecord<T>(r));
  }
}
