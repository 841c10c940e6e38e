/**
 * One ordered queue per key (a room, a channel): jobs with the same key run one after
 * another in the order they were pushed; different keys run side by side. A failing job
 * rejects its own promise and never stalls or breaks the jobs behind it.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();
  private waiting = 0;

  constructor(private readonly onDepthChange: (depth: number) => void = () => undefined) {}

  get depth(): number {
    return this.waiting;
  }

  push<T>(key: string, job: () => Promise<T>): Promise<T> {
    this.waiting += 1;
    this.onDepthChange(this.waiting);
    const previous = this.tails.get(key) ?? Promise.resolve();
    const run = previous.then(job, job).finally(() => {
      this.waiting -= 1;
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
