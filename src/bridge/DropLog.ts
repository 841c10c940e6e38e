/**
 * A cap being hit is logged clearly but not once per dropped item: the first drop for a key
 * logs at once, later ones at most once per interval, each line saying how many were dropped
 * since the one before.
 */
export class DropLog {
  private readonly last = new Map<string, { at: number; dropped: number }>();

  constructor(
    private readonly warn: (message: string, meta: Record<string, unknown>) => void,
    private readonly message: string,
    private readonly intervalMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  dropped(key: string, meta: Record<string, unknown> = {}): void {
    const entry = this.last.get(key);
    if (entry && this.now() - entry.at < this.intervalMs) {
      entry.dropped += 1;
      return;
    }
    const droppedSinceLastLog = (entry?.dropped ?? 0) + 1;
    this.last.set(key, { at: this.now(), dropped: 0 });
    this.warn(this.message, { ...meta, droppedSinceLastLog });
  }
}
