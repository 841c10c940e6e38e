/**
 * One ordered queue per key (a room, a channel): jobs with the same key run one after
 * another in the order they were pushed; different keys run side by side. A failing job
 * rejects its own promise and never stalls or breaks the jobs behind it.
 *
 * Bounded: a push beyond `maxPerKey` jobs for its key, or `maxTotal` jobs in all, is refused
 * at once (its promise rejects with QueueFullError) and reported to `onRefused`, so the
 * caller counts and logs what it lost instead of growing without bound. Membership changes,
 * the coalescable kind, do not come here (MembershipLanes), so what a full queue refuses is
 * always counted and logged.
 */
export class QueueFullError extends Error {
  constructor(
    readonly key: string,
    readonly scope: "key" | "total",
  ) {
    super(scope === "key" ? "the room's queue is full" : "the bridge's room queues are full");
    this.name = "QueueFullError";
  }
}

export interface KeyedQueueLimits {
  maxPerKey: number;
  maxTotal: number;
}

export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();
  private readonly perKey = new Map<string, number>();
  private waiting = 0;

  constructor(
    private readonly onDepthChange: (depth: number) => void = () => undefined,
    private readonly limits: KeyedQueueLimits = { maxPerKey: Infinity, maxTotal: Infinity },
    private readonly onRefused: (err: QueueFullError, kind: string) => void = () => undefined,
  ) {}

  get depth(): number {
    return this.waiting;
  }

  depthOf(key: string): number {
    return this.perKey.get(key) ?? 0;
  }

  /** The depth of the deepest key's queue. */
  get deepest(): number {
    let max = 0;
    for (const n of this.perKey.values()) max = Math.max(max, n);
    return max;
  }

  /** `kind` names what the job is (e.g. irc_line), for whoever counts refusals. */
  push<T>(key: string, job: () => Promise<T>, kind = "other"): Promise<T> {
    const full = this.depthOf(key) >= this.limits.maxPerKey ? "key" : this.waiting >= this.limits.maxTotal ? "total" : null;
    if (full) {
      const err = new QueueFullError(key, full);
      this.onRefused(err, kind);
      return Promise.reject(err);
    }
    this.waiting += 1;
    this.perKey.set(key, this.depthOf(key) + 1);
    this.onDepthChange(this.waiting);
    const previous = this.tails.get(key) ?? Promise.resolve();
    const run = previous.then(job, job).finally(() => {
      this.waiting -= 1;
      const left = this.depthOf(key) - 1;
      if (left > 0) this.perKey.set(key, left);
      else this.perKey.delete(key);
      this.onDepthChange(this.waiting);
    });
    const tail = run.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return run;
  }

  /** Resolves when every job pushed so far has finished. */
  async idle(): Promise<void> {
    await Promise.all([...this.tails.values()]);
  }
}
