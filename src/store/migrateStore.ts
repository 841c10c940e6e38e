/**
 * `matrix-irc-bridge migrate-store --from <dataDir> --to <connectionString>`: copies an NeDB
 * store into PostgreSQL, so a bridge can start embedded and grow. Every write is an upsert (or
 * keeps the row already there), so running it again is harmless and a run cut short is
 * finished by running it again. The journal's pending events are copied too: what the
 * homeserver was told is safe stays safe. Stop the bridge first.
 */
import { existsSync, readdirSync } from "node:fs";
import { NedbDataStore } from "./NedbDataStore.js";
import { PgDataStore } from "./PgDataStore.js";

const LINK_BATCH = 2_000;
const PARALLEL = 8;

/** Runs `write` over `items`, a few at a time. */
async function each<T>(items: T[], write: (item: T) => Promise<unknown>): Promise<number> {
  for (let i = 0; i < items.length; i += PARALLEL) await Promise.all(items.slice(i, i + PARALLEL).map(write));
  return items.length;
}

export class MigrateStoreError extends Error {}

export interface MigrateCounts {
  rooms: number;
  ghosts: number;
  puppets: number;
  users: number;
  pmRooms: number;
  chanopStates: number;
  records: number;
  messageLinks: number;
  transactions: number;
  pendingEvents: number;
}

export async function migrateStore(fromDir: string, connectionString: string, print: (line: string) => void = () => undefined): Promise<MigrateCounts> {
  if (!existsSync(fromDir) || !readdirSync(fromDir).some((f) => f.endsWith(".db"))) {
    throw new MigrateStoreError(`${fromDir} holds no NeDB store (no *.db files); --from is the bridge's store.dataDir`);
  }
  const from = new NedbDataStore(fromDir);
  const to = new PgDataStore(connectionString, PARALLEL);
  await from.open();
  try {
    await to.open();
  } catch (err) {
    await from.close();
    await to.close().catch(() => undefined);
    throw new MigrateStoreError(`cannot open the PostgreSQL store at ${redact(connectionString)}: ${(err as Error).message}`);
  }
  const counts = {} as MigrateCounts;
  const step = async (name: keyof MigrateCounts, run: () => Promise<number>) => {
    counts[name] = await run();
    print(`${name.padEnd(14)} ${String(counts[name]).padStart(9)} copied`);
  };
  try {
    const all = from.snapshot();
    await step("rooms", async () => each(await from.getRoomLinks(), (l) => to.upsertRoomLink(l)));
    await step("ghosts", () => each(all.ghosts, (g) => to.upsertGhost(g)));
    await step("puppets", () => each(all.puppets, (p) => to.upsertPuppet(p)));
    await step("users", async () => each(await from.getUsers(), (u) => to.upsertUser(u)));
    await step("pmRooms", () => each(all.pms, (p) => to.setPmRoom(p)));
    await step("chanopStates", async () => each(await from.getChanopStates(), (s) => to.putChanopState(s)));
    // Oldest first, one at a time: the copies keep their order of update.
    await step("records", async () => {
      for (const r of all.records) await to.importRecord(r);
      return all.records.length;
    });
    await step("messageLinks", async () => {
      for (let i = 0; i < all.links.length; i += LINK_BATCH) await to.putMessageLinks(all.links.slice(i, i + LINK_BATCH));
      return all.links.length;
    });
    // In the order received, so replay order is kept.
    await step("transactions", async () => {
      for (const t of all.journal) await to.importTransaction(t);
      return all.journal.length;
    });
    counts.pendingEvents = all.journal.reduce((n, t) => n + t.events.length, 0);
    print(`${"pendingEvents".padEnd(14)} ${String(counts.pendingEvents).padStart(9)} copied (replayed at the next start)`);
    return counts;
  } finally {
    await Promise.allSettled([from.close(), to.close()]);
  }
}

/** The connection string without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)[^@]*@/, "$1***@");
}
