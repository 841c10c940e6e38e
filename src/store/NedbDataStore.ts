import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";
import type Nedb from "@seald-io/nedb";
import type { ChanopState, DataStore, GhostRecord, KeyedRecord, MessageLink, PendingEvent, PmRoom, PuppetRecord, RoomLink, UserRecord } from "./DataStore.js";
import { getLogger } from "../logging.js";
import { JournalLog } from "./JournalLog.js";
import { LinkLog } from "./LinkLog.js";

const log = getLogger("store/nedb");

// @seald-io/nedb is CommonJS whose typings declare an ES default export; require() gets the class.
const Datastore = createRequire(import.meta.url)("@seald-io/nedb") as typeof Nedb.default;
type Datastore<T> = Nedb.default<T>;

const COMPACT_EVERY_MS = 10 * 60_000;

type JournalDoc =
  | { _id: string; kind: "txn"; txnId: string; receivedAt: number; completedAt: number | null }
  // The event is kept as JSON text: NeDB refuses field names with dots, which Matrix events
  // are full of ("m.relates_to", "m.federate").
  | { _id: string; kind: "event"; txnId: string; seq: number; receivedAt: number; event: string };

/** Values are kept as JSON text: NeDB refuses field names with dots (user IDs, event types). */
/** A journalled transaction and its events still pending (as `migrate-store` copies them). */
export interface JournalCopy {
  txnId: string;
  receivedAt: number;
  completedAt: number | null;
  events: { seq: number; event: Record<string, unknown> }[];
}

export interface NedbSnapshot {
  ghosts: GhostRecord[];
  puppets: PuppetRecord[];
  pms: PmRoom[];
  links: MessageLink[];
  records: KeyedRecord<unknown>[];
  journal: JournalCopy[];
}

type RecordDoc = { _id: string; kind: string; key: string; json: string; updatedAt: number };

function toRecord<T>(doc: RecordDoc): KeyedRecord<T> {
  return { kind: doc.kind, key: doc.key, value: JSON.parse(doc.json) as T, updatedAt: doc.updatedAt };
}

function toPuppet(doc: PuppetRecord): PuppetRecord {
  const { userId, networkId, nick, username } = doc;
  return { userId, networkId, nick, username, ipv6: doc.ipv6 ?? null, channels: doc.channels ?? [], lastActiveAt: doc.lastActiveAt ?? 0, password: doc.password ?? null, account: doc.account ?? null };
}

function toLink(doc: MessageLink | null): MessageLink | null {
  if (!doc) return null;
  const { roomId, eventId, networkId, msgid, at } = doc;
  return { roomId, eventId, networkId, msgid, at };
}

function toUser(doc: UserRecord | null): UserRecord | null {
  if (!doc) return null;
  const ignored = Object.fromEntries(Object.entries(doc.ignored ?? {}).map(([network, nicks]) => [network, [...nicks]]));
  return { userId: doc.userId, adminRoomId: doc.adminRoomId ?? null, features: { ...(doc.features ?? {}) }, ignored };
}

function toPm(doc: PmRoom | null): PmRoom | null {
  if (!doc) return null;
  const { roomId, userId, networkId, nick } = doc;
  return { roomId, userId, networkId, nick, nickName: doc.nickName ?? null, reinvitedAt: doc.reinvitedAt ?? null };
}

/**
 * NeDB files in the data directory: rooms.db, ghosts.db, puppets.db, users.db, pms.db,
 * chanops.db and records.db; the transaction journal in journal.log and the message links in
 * messages.log (see JournalLog and LinkLog: both are written for every relayed message, and
 * NeDB's per-write file open through the threadpool was their largest cost).
 */
export class NedbDataStore implements DataStore {
  private readonly rooms: Datastore<RoomLink>;
  private readonly ghosts: Datastore<GhostRecord>;
  private readonly puppets: Datastore<PuppetRecord>;
  private readonly journal: JournalLog;
  private oldJournalFile: string | null = null;
  private readonly messages: LinkLog;
  private readonly pms: Datastore<PmRoom>;
  private readonly users: Datastore<UserRecord>;
  private readonly chanops: Datastore<ChanopState>;
  private readonly records: Datastore<RecordDoc>;
  private lastRecordUpdate = 0;
  /** Links are one writeSync to a kept-open file (LinkLog). */
  readonly cheapLinkWrites = true;

  constructor(private readonly dataDir: string) {
    const file = (name: string) => ({ filename: join(dataDir, name) });
    this.rooms = new Datastore<RoomLink>(file("rooms.db"));
    this.ghosts = new Datastore<GhostRecord>(file("ghosts.db"));
    this.puppets = new Datastore<PuppetRecord>(file("puppets.db"));
    this.journal = new JournalLog(dataDir);
    this.messages = new LinkLog(dataDir);
    this.pms = new Datastore<PmRoom>(file("pms.db"));
    this.users = new Datastore<UserRecord>(file("users.db"));
    this.chanops = new Datastore<ChanopState>(file("chanops.db"));
    this.records = new Datastore<RecordDoc>(file("records.db"));
  }

  private all() {
    return [this.rooms, this.ghosts, this.puppets, this.pms, this.users, this.chanops, this.records] as Datastore<never>[];
  }

  async open(): Promise<void> {
    mkdirSync(this.dataDir, { recursive: true });
    for (const db of this.all()) {
      await db.loadDatabaseAsync();
      db.setAutocompactionInterval(COMPACT_EVERY_MS);
    }
    await this.rooms.ensureIndexAsync({ fieldName: "roomId" });
    await this.ghosts.ensureIndexAsync({ fieldName: "userId", unique: true });
    await this.puppets.ensureIndexAsync({ fieldName: "userId" });
    await this.adoptOldJournal();
    const { tornLines } = await this.journal.open();
    if (tornLines > 0) log.warn("Skipped journal lines torn by a crash; the homeserver sends those transactions again", { lines: tornLines });
    if (this.oldJournalFile) {
      await JournalLog.retire(this.oldJournalFile);
      log.info("Moved the journal from journal.db to journal.log");
    }
    await this.openLinks();
    await this.pms.ensureIndexAsync({ fieldName: "roomId" });
    await this.pms.ensureIndexAsync({ fieldName: "userId" });
    await this.users.ensureIndexAsync({ fieldName: "userId", unique: true });
    await this.users.ensureIndexAsync({ fieldName: "adminRoomId" });
    await this.chanops.ensureIndexAsync({ fieldName: "roomId", unique: true });
    await this.records.ensureIndexAsync({ fieldName: "kind" });
  }

  async close(): Promise<void> {
    await this.journal.close();
    this.messages.close();
    for (const db of this.all()) {
      db.stopAutocompaction();
      await db.compactDatafileAsync();
    }
  }

  async getRoomLinks(): Promise<RoomLink[]> {
    const docs = await this.rooms.findAsync({});
    return docs.map(({ roomId, networkId, channel, channelName, origin, sealedKey }) => ({ roomId, networkId, channel, channelName, origin, sealedKey: sealedKey ?? null }));
  }

  async upsertRoomLink(link: RoomLink): Promise<void> {
    const { roomId, networkId, channel } = link;
    await this.rooms.updateAsync({ roomId, networkId, channel }, { ...link }, { upsert: true });
  }

  async removeRoomLink(roomId: string, networkId: string, channel: string): Promise<void> {
    await this.rooms.removeAsync({ roomId, networkId, channel }, { multi: true });
  }

  async getChanopStates(): Promise<ChanopState[]> {
    return (await this.chanops.findAsync({})).map(({ roomId, bridgeLevels, channelModes }) => ({ roomId, bridgeLevels: bridgeLevels ?? [], channelModes: channelModes ?? [] }));
  }

  async putChanopState(state: ChanopState): Promise<void> {
    const { roomId, bridgeLevels, channelModes } = state;
    await this.chanops.updateAsync({ roomId }, { roomId, bridgeLevels: bridgeLevels.map(([u, l]) => [u, l]), channelModes: channelModes.map(([c, m]) => [c, m]) }, { upsert: true });
  }

  async getUsers(): Promise<UserRecord[]> {
    return (await this.users.findAsync({})).map((doc) => toUser(doc)!);
  }

  async upsertUser(user: UserRecord): Promise<void> {
    const ignored = Object.fromEntries(Object.entries(user.ignored ?? {}).map(([network, nicks]) => [network, [...nicks]]));
    await this.users.updateAsync({ userId: user.userId }, { ...user, features: { ...user.features }, ignored }, { upsert: true });
  }

  async getPmRoom(userId: string, networkId: string, nick: string): Promise<PmRoom | null> {
    return toPm(await this.pms.findOneAsync({ userId, networkId, nick }));
  }

  async getPmRoomById(roomId: string): Promise<PmRoom | null> {
    return toPm(await this.pms.findOneAsync({ roomId }));
  }

  async setPmRoom(pm: PmRoom): Promise<void> {
    const { userId, networkId, nick } = pm;
    await this.pms.updateAsync({ userId, networkId, nick }, { ...pm }, { upsert: true });
  }

  async getGhost(userId: string): Promise<GhostRecord | null> {
    const doc = await this.ghosts.findOneAsync({ userId });
    return doc ? { userId: doc.userId, networkId: doc.networkId, nick: doc.nick, displayName: doc.displayName } : null;
  }

  async upsertGhost(ghost: GhostRecord): Promise<void> {
    await this.ghosts.updateAsync({ userId: ghost.userId }, { ...ghost }, { upsert: true });
  }

  async getPuppet(userId: string, networkId: string): Promise<PuppetRecord | null> {
    const doc = await this.puppets.findOneAsync({ userId, networkId });
    return doc ? toPuppet(doc) : null;
  }

  async getPuppets(networkId: string): Promise<PuppetRecord[]> {
    return (await this.puppets.findAsync({ networkId })).map(toPuppet);
  }

  async upsertPuppet(puppet: PuppetRecord): Promise<void> {
    await this.puppets.updateAsync({ userId: puppet.userId, networkId: puppet.networkId }, { ...puppet }, { upsert: true });
  }

  async putMessageLinks(links: MessageLink[]): Promise<void> {
    this.messages.put(links);
  }

  async getMessageLinkByEvent(eventId: string): Promise<MessageLink | null> {
    return this.messages.byEvent(eventId);
  }

  async getMessageLinkByMsgid(networkId: string, msgid: string): Promise<MessageLink | null> {
    return this.messages.byMsgid(networkId, msgid);
  }

  async pruneMessageLinks(maxAgeMs: number): Promise<number> {
    return this.messages.removeUpTo(Date.now() - maxAgeMs, false);
  }

  async countMessageLinks(): Promise<number> {
    return this.messages.size;
  }

  async pruneOldestMessageLinks(keep: number): Promise<number> {
    // Links sharing the cut-off millisecond go together, so a few more than asked may go.
    const excess = this.messages.size - keep;
    if (excess <= 0) return 0;
    const times = this.messages.times().sort();
    return this.messages.removeUpTo(times[excess - 1], true);
  }

  /** Opens messages.log, taking in (then removing) the messages.db of an older version. */
  private async openLinks(): Promise<void> {
    const oldFile = join(this.dataDir, "messages.db");
    let adopted: MessageLink[] = [];
    if (existsSync(oldFile)) {
      const old = new Datastore<MessageLink>({ filename: oldFile });
      await old.loadDatabaseAsync();
      adopted = old.getAllData<MessageLink>().map((d) => toLink(d)!).sort((a, b) => a.at - b.at);
    }
    const { tornLines } = this.messages.open(adopted);
    if (tornLines > 0) log.warn("Skipped message-link lines torn by a crash; replies to those lines lose their link", { lines: tornLines });
    if (adopted.length > 0 || existsSync(oldFile)) {
      rmSync(oldFile, { force: true });
      log.info("Moved the message links from messages.db to messages.log", { links: adopted.length });
    }
  }

  /**
   * Moves the journal of an older version (journal.db, in NeDB) into journal.log: its pending
   * events and the transaction IDs it remembers. A transaction whose record is missing (a write
   * torn by a crash, record last) was never acknowledged, so its events are left out: the
   * homeserver sends it again.
   */
  private async adoptOldJournal(): Promise<void> {
    const file = join(this.dataDir, "journal.db");
    if (!existsSync(file)) return;
    const old = new Datastore<JournalDoc>({ filename: file });
    await old.loadDatabaseAsync();
    const docs = await old.findAsync({}).sort({ receivedAt: 1 });
    const events = new Map<string, [number, Record<string, unknown>][]>();
    for (const d of docs) if (d.kind === "event") events.set(d.txnId, [...(events.get(d.txnId) ?? []), [d.seq, JSON.parse(d.event) as Record<string, unknown>]]);
    for (const d of docs) if (d.kind === "txn") this.journal.adopt(d.txnId, d.receivedAt, d.completedAt, events.get(d.txnId) ?? []);
    return void (this.oldJournalFile = file);
  }

  async hasTransaction(txnId: string): Promise<boolean> {
    return this.journal.has(txnId);
  }

  async recordTransaction(txnId: string, events: Record<string, unknown>[]): Promise<void> {
    await this.journal.record(txnId, events);
  }

  async markEventDone(txnId: string, seq: number): Promise<void> {
    await this.journal.done(txnId, seq);
  }

  async getPendingEvents(): Promise<PendingEvent[]> {
    return this.journal.pendingEvents();
  }

  async pruneTransactions(maxAgeMs: number): Promise<number> {
    return this.journal.prune(maxAgeMs);
  }

  /**
   * Everything not reachable through DataStore's lookups, for `migrate-store`: all ghosts,
   * puppets, PM rooms, message links, keyed records, and the journal's transactions with their
   * pending events. NeDB holds it all in memory already.
   */
  snapshot(): NedbSnapshot {
    return {
      ghosts: this.ghosts.getAllData<GhostRecord>().map(({ userId, networkId, nick, displayName }) => ({ userId, networkId, nick, displayName: displayName ?? null })),
      puppets: this.puppets.getAllData<PuppetRecord>().map(toPuppet),
      pms: this.pms.getAllData<PmRoom>().map((d) => toPm(d)!),
      links: this.messages.all(),
      records: this.records.getAllData<RecordDoc>().map((d) => toRecord<unknown>(d)).sort((a, b) => a.updatedAt - b.updatedAt),
      journal: this.journal.copies(),
    };
  }

  async getRecord<T>(kind: string, key: string): Promise<KeyedRecord<T> | null> {
    const doc = await this.records.findOneAsync({ _id: recordId(kind, key) });
    return doc ? toRecord<T>(doc) : null;
  }

  async putRecord<T>(kind: string, key: string, value: T): Promise<void> {
    const _id = recordId(kind, key);
    // Strictly increasing, so "oldest update first" holds for puts in the same millisecond.
    this.lastRecordUpdate = Math.max(Date.now(), this.lastRecordUpdate + 1);
    await this.records.updateAsync({ _id }, { _id, kind, key, json: JSON.stringify(value), updatedAt: this.lastRecordUpdate }, { upsert: true });
  }

  async deleteRecord(kind: string, key: string): Promise<boolean> {
    return (await this.records.removeAsync({ _id: recordId(kind, key) }, {})) > 0;
  }

  async listRecords<T>(kind: string): Promise<KeyedRecord<T>[]> {
    return (await this.records.findAsync({ kind }).sort({ updatedAt: 1 })).map((doc) => toRecord<T>(doc));
  }
}

function recordId(kind: string, key: string): string {
  return `${kind}\u0000${key}`;
}
