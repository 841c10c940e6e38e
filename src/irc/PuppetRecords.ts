/**
 * The stored IRC identities of Matrix users on one network: nick, ident, IPv6 address,
 * channels, credentials and last activity. Idents and addresses are unique per network and
 * never change once given, so a user looks the same to IRC across restarts.
 */
import type { NetworkConfig } from "../config/schema.js";
import { sanitiseNick } from "../format/nick.js";
import { fillTemplate } from "../format/template.js";
import { getLogger } from "../logging.js";
import type { DataStore, PuppetRecord } from "../store/DataStore.js";
import { allocateIpv6 } from "./ipv6.js";
import { uniqueUsername, usernameFor } from "./usernames.js";

const log = getLogger("irc/puppets");

export class PuppetRecords {
  private records = new Map<string, PuppetRecord>();
  private readonly takenUsernames = new Set<string>();
  private readonly takenAddresses = new Set<string>();

  constructor(
    private readonly networkId: string,
    private readonly config: NetworkConfig,
    private readonly store: DataStore,
    private readonly casefold: (name: string) => string,
  ) {}

  async load(): Promise<void> {
    this.records = new Map((await this.store.getPuppets(this.networkId)).map((r) => [r.userId, r]));
    for (const r of this.records.values()) {
      this.takenUsernames.add(r.username);
      if (r.ipv6) this.takenAddresses.add(r.ipv6);
    }
  }

  get(userId: string): PuppetRecord | null {
    return this.records.get(userId) ?? null;
  }

  all(): PuppetRecord[] {
    return [...this.records.values()];
  }

  /** The user's record, made (nick from the template, a unique ident and address) and stored if new. */
  async ensure(userId: string, displayName: () => Promise<string | null>): Promise<PuppetRecord> {
    const stored = this.records.get(userId);
    if (stored) return stored;
    const localpart = userId.slice(1).split(":")[0];
    const display = this.config.puppetNickTemplate.includes("$DISPLAY") ? await displayName() : null;
    const username = uniqueUsername(usernameFor(userId), this.takenUsernames);
    const ipv6 = this.config.ipv6Prefix ? allocateIpv6(this.config.ipv6Prefix, userId, this.takenAddresses) : null;
    this.takenUsernames.add(username);
    if (ipv6) this.takenAddresses.add(ipv6);
    const record: PuppetRecord = {
      userId,
      networkId: this.networkId,
      nick: sanitiseNick(fillTemplate(this.config.puppetNickTemplate, { LOCALPART: localpart, DISPLAY: display ?? localpart })),
      username,
      ipv6,
      channels: [],
      lastActiveAt: 0,
      password: null,
      account: null,
    };
    this.records.set(userId, record);
    await this.store.upsertPuppet(record);
    return record;
  }

  async update(record: PuppetRecord, changes: Partial<PuppetRecord>): Promise<void> {
    Object.assign(record, changes);
    await this.store.upsertPuppet(record);
  }

  addChannel(record: PuppetRecord, channelName: string): void {
    const folded = this.casefold(channelName);
    if (record.channels.some((c) => this.casefold(c) === folded)) return;
    record.channels.push(channelName);
    this.persist(record);
  }

  removeChannel(userId: string, channelName: string): void {
    const record = this.records.get(userId);
    if (!record) return;
    const folded = this.casefold(channelName);
    const kept = record.channels.filter((c) => this.casefold(c) !== folded);
    if (kept.length === record.channels.length) return;
    record.channels = kept;
    this.persist(record);
  }

  /** Writes a record in the background (activity, channels): a failure is logged, not thrown. */
  persist(record: PuppetRecord): void {
    this.store.upsertPuppet(record).catch((err: Error) => log.error("Could not store a puppet", { userId: record.userId, error: err.message }));
  }
}
