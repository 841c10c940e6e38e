/**
 * Token buckets per key (a Matrix user, an IRC nick): each key may spend `burst` tokens at
 * once, and gets them back at `perMinute`. The map is bounded: keys whose bucket is full again
 * carry no information and are dropped first; past `maxKeys` the least recently used go, so
 * a stranger inventing keys (nicks are free on IRC) costs memory of at most `maxKeys` entries.
 */
export interface RateLimit {
  burst: number;
  perMinute: number;
}

interface Bucket {
  tokens: number;
  at: number;
  /** When the key was last told it is limited (see `shouldTell`). */
  toldAt: number;
}

export const DEFAULT_MAX_KEYS = 10_000;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly limit: RateLimit,
    private readonly maxKeys = DEFAULT_MAX_KEYS,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.buckets.size;
  }

  /**
   * Spends one token from each key's bucket if every one of them has one; otherwise spends
   * nothing and returns false (so a refusal by one key does not drain the others).
   */
  take(...keys: string[]): boolean {
    const now = this.now();
    const buckets = keys.map((key) => this.refilled(key, now));
    if (buckets.some((b) => b.tokens < 1)) return false;
    for (const b of buckets) b.tokens -= 1;
    return true;
  }

  /** Milliseconds until every key has a token again (0: now). */
  retryAfterMs(...keys: string[]): number {
    const now = this.now();
    const missing = Math.max(0, ...keys.map((key) => 1 - this.refilled(key, now).tokens));
    return Math.ceil((missing * 60_000) / this.limit.perMinute);
  }

  /**
   * Whether a refused key should be told now: at most once per `windowMs` per key, so a
   * flood of refused requests gets one answer, not one each.
   */
  shouldTell(key: string, windowMs: number): boolean {
    const now = this.now();
    const bucket = this.refilled(key, now);
    if (now - bucket.toldAt < windowMs) return false;
    bucket.toldAt = now;
    return true;
  }

  private refilled(key: string, now: number): Bucket {
    let bucket = this.buckets.get(key);
    if (bucket) {
      bucket.tokens = Math.min(this.limit.burst, bucket.tokens + ((now - bucket.at) * this.limit.perMinute) / 60_000);
      bucket.at = now;
      this.buckets.delete(key); // re-inserted last: the map's order is least recently used first
    } else {
      bucket = { tokens: this.limit.burst, at: now, toldAt: -Infinity };
      this.evict(now);
    }
    this.buckets.set(key, bucket);
    return bucket;
  }

  private evict(now: number): void {
    if (this.buckets.size < this.maxKeys) return;
    const fullAfterMs = (this.limit.burst * 60_000) / this.limit.perMinute;
    // Least recently used first: drop buckets that are full again (forgetting them changes
    // nothing) up to the first one still in use, then the oldest if still over the bound.
    for (const [key, b] of this.buckets) {
      if (now - b.at < fullAfterMs) break;
      this.buckets.delete(key);
    }
    while (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string);
  }
}
