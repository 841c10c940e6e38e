/**
 * The PostgreSQL store's schema as numbered migrations. Each runs once, in order, and is
 * recorded in `schema_migrations`; all pending ones run at start-up in ONE transaction under an
 * advisory lock, so two bridges (or a bridge and `migrate-store`) starting together never
 * apply one twice, and a failed migration leaves the schema as it was. The statements are
 * idempotent as well (IF NOT EXISTS), so a schema made by hand from them is accepted.
 *
 * Never edit a released migration: add the next number.
 */
import type { PoolClient } from "pg";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: "initial schema",
    sql: `
CREATE TABLE IF NOT EXISTS room_links (
  room_id text NOT NULL, network_id text NOT NULL, channel text NOT NULL,
  channel_name text NOT NULL, origin text NOT NULL, sealed_key text,
  n bigserial, PRIMARY KEY (room_id, network_id, channel));
CREATE TABLE IF NOT EXISTS ghosts (
  user_id text PRIMARY KEY, network_id text NOT NULL, nick text NOT NULL, display_name text);
CREATE TABLE IF NOT EXISTS puppets (
  user_id text NOT NULL, network_id text NOT NULL, nick text NOT NULL, username text NOT NULL,
  ipv6 text, channels text[] NOT NULL DEFAULT '{}', last_active_at bigint NOT NULL DEFAULT 0,
  password text, account text, PRIMARY KEY (user_id, network_id));
-- Start-up loads a network's puppets.
CREATE INDEX IF NOT EXISTS puppets_network ON puppets (network_id);
CREATE TABLE IF NOT EXISTS users (
  user_id text PRIMARY KEY, admin_room_id text, features text NOT NULL DEFAULT '{}', ignored text NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS pm_rooms (
  user_id text NOT NULL, network_id text NOT NULL, nick text NOT NULL, room_id text NOT NULL,
  nick_name text, reinvited_at bigint, PRIMARY KEY (user_id, network_id, nick));
-- Every event in a PM room asks which PM it belongs to.
CREATE INDEX IF NOT EXISTS pm_rooms_room ON pm_rooms (room_id);
CREATE TABLE IF NOT EXISTS chanop_states (
  room_id text PRIMARY KEY, bridge_levels text NOT NULL, channel_modes text NOT NULL);
-- Event ID <-> msgid: written for every relayed line, read by replies and edits both ways.
-- The unique index serves lookups by event and makes copies (migrate-store) idempotent.
CREATE TABLE IF NOT EXISTS message_links (
  room_id text NOT NULL, event_id text NOT NULL, network_id text NOT NULL, msgid text NOT NULL,
  at bigint NOT NULL, n bigserial);
CREATE UNIQUE INDEX IF NOT EXISTS message_links_event ON message_links (event_id, network_id, msgid);
CREATE INDEX IF NOT EXISTS message_links_msgid ON message_links (network_id, msgid);
CREATE INDEX IF NOT EXISTS message_links_at ON message_links (at);
-- The journal: a transaction and its events are written by one statement (one database
-- transaction) before the homeserver gets its 200; each event row goes when it is handled.
-- Events are JSON text, as received: jsonb would refuse \\u0000 in a hostile event's strings.
CREATE TABLE IF NOT EXISTS journal_txns (
  txn_id text PRIMARY KEY, n bigserial, received_at bigint NOT NULL, completed_at bigint,
  pending integer NOT NULL);
CREATE INDEX IF NOT EXISTS journal_txns_completed ON journal_txns (completed_at) WHERE completed_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS journal_events (
  txn_id text NOT NULL, seq integer NOT NULL, txn_n bigint NOT NULL, received_at bigint NOT NULL,
  event text NOT NULL, PRIMARY KEY (txn_id, seq));
-- Replay order at start-up: transactions as received, events as in their transaction.
CREATE INDEX IF NOT EXISTS journal_events_order ON journal_events (txn_n, seq);
CREATE SEQUENCE IF NOT EXISTS records_order;
CREATE TABLE IF NOT EXISTS records (
  kind text NOT NULL, key text NOT NULL, value text NOT NULL, updated_at bigint NOT NULL,
  n bigint NOT NULL DEFAULT nextval('records_order'), PRIMARY KEY (kind, key));
CREATE INDEX IF NOT EXISTS records_kind_order ON records (kind, n);
`,
  },
];

/** Any number, the same in every bridge: serialises migrations across processes. */
const LOCK_KEY = 0x1bc_0715;

export class SchemaTooNewError extends Error {
  constructor(found: number, known: number) {
    super(
      `The PostgreSQL store's schema is at version ${found}, newer than this bridge knows (${known}): ` +
        "a newer version of the bridge has upgraded it. Run that version (or newer), or restore the database from a backup taken before the upgrade.",
    );
    this.name = "SchemaTooNewError";
  }
}

/**
 * Brings the schema up to date in one transaction; returns the versions applied. Throws
 * SchemaTooNewError, touching nothing, when the database knows a migration this code does not.
 */
export async function migrate(client: PoolClient, migrations: Migration[] = MIGRATIONS): Promise<number[]> {
  const known = Math.max(0, ...migrations.map((m) => m.version));
  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock($1)", [LOCK_KEY]);
    await client.query("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
    const { rows } = await client.query<{ version: number }>("SELECT version FROM schema_migrations");
    const applied = new Set(rows.map((r) => r.version));
    const newest = Math.max(0, ...applied);
    if (newest > known) throw new SchemaTooNewError(newest, known);
    const done: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (applied.has(m.version)) continue;
      await client.query(m.sql);
      await client.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [m.version, m.name]);
      done.push(m.version);
    }
    await client.query("COMMIT");
    return done;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}
