/**
 * Session tokens of the provisioning API, given by `exchange_openid` to a user whose homeserver
 * vouched for them: random, bound to that user, expiring. Kept in the store's keyed records
 * (so a restart does not log widgets out) under the token's SHA-256, never the token itself:
 * whoever reads the store cannot act as anyone.
 */
import { createHash, randomBytes } from "node:crypto";
import type { DataStore } from "../store/DataStore.js";

const KIND = "provisioning-session";
const TOKEN_PREFIX = "ircprov_";

interface Session {
  userId: string;
  expiresAt: number;
}

const keyOf = (token: string) => createHash("sha256").update(token).digest("hex");

export class ProvisioningSessions {
  constructor(
    private readonly store: DataStore,
    private readonly lifetimeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new token for the user. */
  async create(userId: string): Promise<{ token: string; expiresAt: number }> {
    const token = TOKEN_PREFIX + randomBytes(32).toString("base64url");
    const expiresAt = this.now() + this.lifetimeMs;
    await this.store.putRecord<Session>(KIND, keyOf(token), { userId, expiresAt });
    return { token, expiresAt };
  }

  /** The user a live token belongs to, or null (unknown or expired: an expired one is forgotten). */
  async userOf(token: string): Promise<string | null> {
    if (!token.startsWith(TOKEN_PREFIX)) return null;
    const record = await this.store.getRecord<Session>(KIND, keyOf(token));
    if (!record) return null;
    if (record.value.expiresAt <= this.now()) {
      await this.store.deleteRecord(KIND, keyOf(token));
      return null;
    }
    return record.value.userId;
  }

  /** Forgets expired sessions; returns how many. */
  async prune(): Promise<number> {
    const now = this.now();
    const expired = (await this.store.listRecords<Session>(KIND)).filter((r) => r.value.expiresAt <= now);
    for (const r of expired) await this.store.deleteRecord(KIND, r.key);
    return expired.length;
  }
}
