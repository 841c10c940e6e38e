/**
 * IRC membership towards Matrix, one lane per room, apart from the room's message queue so
 * that churn never delays a line. A lane holds at most one pending change per ghost: the
 * latest thing IRC said (in or out), so a nick that joins and parts before its change is due
 * costs Matrix nothing, and a storm of JOIN/PART pairs becomes at most one change per ghost.
 * A change is due `windowMs` after it was first made pending; due changes are applied one at
 * a time per room, each after `pace()` (the network's ghostJoinsPerSecond).
 *
 * Order that users see is kept: a ghost speaks by joining itself (the intent joins on first
 * message), so a line never waits for its ghost's join; and a ghost's leave waits while
 * lines it said before leaving are still queued for the room (`holdFor`).
 */

export type Want = "join" | "leave";

export interface MembershipChange {
  networkId: string;
  userId: string;
  want: Want;
  /** The nick as IRC wrote it, or null when only the user ID is known (e.g. found in the room). */
  nick: string | null;
  reason: string;
}

export type Outcome = "applied" | "coalesced" | "dropped" | "failed";

export interface LaneHooks {
  /** Joins or leaves the ghost in Matrix (retries are the caller's business). */
  apply(roomId: string, change: MembershipChange): Promise<void>;
  /** Waits for the network's pacing slot before one change is applied. */
  pace(change: MembershipChange): Promise<void>;
  /** Counts what became of each change (metrics); `pending` is the total waiting now. */
  onOutcome?(outcome: Outcome, roomId: string, change: MembershipChange): void;
  onPendingChange?(pending: number): void;
}

interface Pending extends MembershipChange {
  /** When this ghost's change was first made pending: it is due `windowMs` later. */
  since: number;
}

interface Lane {
  pending: Map<string, Pending>;
  /** Ghosts known to be in the room (joined by the bridge, seen there, or spoke there). */
  present: Set<string>;
  /** The ghost whose change is being applied now, if any. */
  applying: string | null;
  running: boolean;
  timer: NodeJS.Timeout | null;
}

export interface LaneOptions {
  /** How long a network's changes wait to be coalesced before they are due. */
  windowMs: (networkId: string) => number;
  /** Pending changes per room; beyond it, joins of ghosts not in the room are dropped (never leaves). */
  maxPendingPerRoom: number;
  now?: () => number;
}

export class MembershipLanes {
  private readonly lanes = new Map<string, Lane>();
  /** Lines queued for a room by a ghost (room\0user → count): its leave waits for them. */
  private readonly holds = new Map<string, number>();
  private pendingTotal = 0;
  private readonly now: () => number;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(
    private readonly options: LaneOptions,
    private readonly hooks: LaneHooks,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Changes waiting in all rooms. */
  get pending(): number {
    return this.pendingTotal;
  }

  pendingIn(roomId: string): number {
    return this.lanes.get(roomId)?.pending.size ?? 0;
  }

  isPresent(roomId: string, userId: string): boolean {
    return this.lanes.get(roomId)?.present.has(userId) ?? false;
  }

  /** The ghost is in the room (it spoke there, or was found there). */
  notePresent(roomId: string, userId: string): void {
    this.lane(roomId).present.add(userId);
  }

  /** The ghost left the room by other means (kicked in Matrix): IRC's own leave needs no mirroring. */
  forget(roomId: string, userId: string): void {
    this.lanes.get(roomId)?.present.delete(userId);
  }

  /**
   * IRC says the ghost should be in (`join`) or out (`leave`) of the room. Replaces any change
   * still pending for it; `immediate` makes it due now (member-list syncs, not churn).
   */
  set(roomId: string, change: MembershipChange, immediate = false): void {
    const lane = this.lane(roomId);
    const existing = lane.pending.get(change.userId);
    const inRoomOrSoon = lane.present.has(change.userId) || lane.applying === change.userId || this.held(roomId, change.userId);
    if (!existing && change.want === "join" && lane.present.has(change.userId) && lane.applying !== change.userId) {
      this.hooks.onOutcome?.("coalesced", roomId, change);
      return;
    }
    if (change.want === "leave" && !inRoomOrSoon) {
      // Not in the room and not about to be: nothing to undo, and a pending join is cancelled.
      if (existing) this.remove(lane, change.userId);
      this.hooks.onOutcome?.("coalesced", roomId, change);
      return;
    }
    if (existing) {
      this.hooks.onOutcome?.("coalesced", roomId, existing);
      lane.pending.set(change.userId, { ...change, since: immediate ? Math.min(existing.since, this.dueNow(change)) : existing.since });
    } else {
      if (change.want === "join" && lane.pending.size >= this.options.maxPendingPerRoom) {
        // At the cap, only joins are dropped: the ghost joins anyway when it speaks, or at the next sync.
        this.hooks.onOutcome?.("dropped", roomId, change);
        return;
      }
      lane.pending.set(change.userId, { ...change, since: immediate ? this.dueNow(change) : this.now() });
      this.setPendingTotal(this.pendingTotal + 1);
    }
    this.kick(roomId, lane);
  }

  /** A line by this ghost was queued for the room: its leave waits until `release` is called. */
  holdFor(roomId: string, userId: string): () => void {
    const key = `${roomId}\u0000${userId}`;
    this.holds.set(key, (this.holds.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.holds.get(key) ?? 1) - 1;
      if (left > 0) this.holds.set(key, left);
      else this.holds.delete(key);
      const lane = this.lanes.get(roomId);
      if (lane && left === 0 && lane.pending.has(userId)) this.kick(roomId, lane);
    };
  }

  /** Resolves once no change is pending or being applied (tests, shutdown). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops the timers; pending changes are dropped (the next start syncs member lists). */
  stop(): void {
    for (const lane of this.lanes.values()) {
      if (lane.timer) clearTimeout(lane.timer);
      lane.timer = null;
    }
  }

  /** A `since` that makes the change due now. */
  private dueNow(change: MembershipChange): number {
    return this.now() - this.options.windowMs(change.networkId);
  }

  private held(roomId: string, userId: string): boolean {
    return this.holds.has(`${roomId}\u0000${userId}`);
  }

  private lane(roomId: string): Lane {
    let lane = this.lanes.get(roomId);
    if (!lane) this.lanes.set(roomId, (lane = { pending: new Map(), present: new Set(), applying: null, running: false, timer: null }));
    return lane;
  }

  private remove(lane: Lane, userId: string): void {
    if (lane.pending.delete(userId)) this.setPendingTotal(this.pendingTotal - 1);
  }

  private setPendingTotal(n: number): void {
    this.pendingTotal = n;
    this.hooks.onPendingChange?.(n);
  }

  /** Starts the room's worker unless it is running (it picks up new changes by itself). */
  private kick(roomId: string, lane: Lane): void {
    if (lane.running) return;
    if (lane.timer) clearTimeout(lane.timer);
    lane.timer = null;
    lane.running = true;
    void this.work(roomId, lane).finally(() => {
      lane.running = false;
      this.settle();
    });
  }

  private async work(roomId: string, lane: Lane): Promise<void> {
    for (;;) {
      const next = this.nextDue(roomId, lane);
      if (!next) return;
      this.remove(lane, next.userId);
      const noop = next.want === "join" ? lane.present.has(next.userId) : !lane.present.has(next.userId);
      if (noop) {
        this.hooks.onOutcome?.("coalesced", roomId, next);
        continue;
      }
      lane.applying = next.userId;
      try {
        await this.hooks.pace(next);
        // Marked before the call: a leave is not retried as a no-op, and a ghost that fails to
        // leave is not known to be present any more (as before lanes).
        if (next.want === "leave") lane.present.delete(next.userId);
        await this.hooks.apply(roomId, next);
        if (next.want === "join") lane.present.add(next.userId);
        this.hooks.onOutcome?.("applied", roomId, next);
      } catch {
        this.hooks.onOutcome?.("failed", roomId, next);
      } finally {
        lane.applying = null;
      }
    }
  }

  /** The first due change not held back by its ghost's queued lines; else arms a timer for the earliest. */
  private nextDue(roomId: string, lane: Lane): Pending | null {
    const now = this.now();
    let earliest = Infinity;
    for (const change of lane.pending.values()) {
      if (change.want === "leave" && this.held(roomId, change.userId)) continue; // released later; kick() then
      const dueAt = change.since + this.options.windowMs(change.networkId);
      if (dueAt <= now) return change;
      earliest = Math.min(earliest, dueAt);
    }
    if (earliest < Infinity) {
      lane.timer = setTimeout(() => {
        lane.timer = null;
        this.kick(roomId, lane);
      }, earliest - now); // not unref'd: stop() clears it
    }
    return null;
  }

  private isIdle(): boolean {
    return this.pendingTotal === 0 && [...this.lanes.values()].every((l) => !l.running);
  }

  private settle(): void {
    if (!this.isIdle()) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
