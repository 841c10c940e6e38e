/**
 * Typing notifications towards IRC, paced as the IRCv3 typing spec asks: `active` at most
 * once per `intervalMs` (3 s) per target, repeated every interval while the user types
 * (receivers forget an `active` after 6 s), `paused` and `done` at once, and `done` only for a
 * target that was told something. Matrix says when typing starts and stops, not how often:
 * the repeats come from here. A target still active after `maxActiveMs` (a stop that never
 * came) is told `done` and forgotten, so nothing repeats for ever.
 */
import type { TypingState } from "./ircv3Tags.js";

export interface TypingClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realClock: TypingClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

interface Entry<T> {
  target: T;
  state: TypingState;
  /** When `active` was last sent (0: never). */
  lastActiveAt: number;
  since: number;
  timer: unknown | null;
}

export class TypingThrottle<T> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly send: (target: T, state: TypingState) => void,
    private readonly intervalMs = 3_000,
    private readonly maxActiveMs = 5 * 60_000,
    private readonly clock: TypingClock = realClock,
  ) {}

  /** Targets being told something now. */
  get size(): number {
    return this.entries.size;
  }

  /** The user's typing state for `key` (one user, one channel) is now `state`. */
  set(key: string, state: TypingState, target: T): void {
    const entry = this.entries.get(key);
    if (state === "done") {
      if (!entry) return;
      this.stop(key, entry);
      this.send(entry.target, "done");
      return;
    }
    if (state === "paused") {
      if (entry?.state === "paused") return;
      const paused = entry ?? { target, state, lastActiveAt: 0, since: this.clock.now(), timer: null };
      if (paused.timer !== null) this.clock.clearTimeout(paused.timer);
      paused.timer = null;
      paused.state = "paused";
      this.entries.set(key, paused);
      this.send(target, "paused");
      return;
    }
    if (entry?.state === "active") return; // already active: the repeats are running
    const active = entry ?? { target, state, lastActiveAt: 0, since: this.clock.now(), timer: null };
    active.state = "active";
    active.target = target;
    this.entries.set(key, active);
    const wait = active.lastActiveAt + this.intervalMs - this.clock.now();
    if (wait <= 0) this.tick(key, active);
    else active.timer = this.clock.setTimeout(() => this.tick(key, active), wait);
  }

  /** Forgets every target without telling them anything (shutdown). */
  clear(): void {
    for (const [key, entry] of this.entries) this.stop(key, entry);
  }

  private tick(key: string, entry: Entry<T>): void {
    entry.timer = null;
    if (this.entries.get(key) !== entry || entry.state !== "active") return;
    if (this.clock.now() - entry.since >= this.maxActiveMs) {
      this.stop(key, entry);
      this.send(entry.target, "done");
      return;
    }
    entry.lastActiveAt = this.clock.now();
    this.send(entry.target, "active");
    entry.timer = this.clock.setTimeout(() => this.tick(key, entry), this.intervalMs);
  }

  private stop(key: string, entry: Entry<T>): void {
    if (entry.timer !== null) this.clock.clearTimeout(entry.timer);
    entry.timer = null;
    this.entries.delete(key);
  }
}
