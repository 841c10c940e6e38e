/**
 * Metric updates on the relay's hot path, applied when the metrics are read. For each call,
 * prom-client checks the labels, hashes them and looks the series up; at a steady few messages
 * a second every call runs cold, and the eight or so per relayed message were ~8% of its
 * JavaScript in CPU profiles (bench/relayCost.ts). Here a call adds to a plain number or array,
 * and the metric's `collect()` (which prom-client runs before every read: /metrics, `get()`)
 * applies what is pending first, so every read sees every update.
 */
import type { Counter, Gauge, Histogram, LabelValues } from "prom-client";

type Collectable = { collect?: () => unknown; reset(): void };
/** A series' pending updates: applied before a read, dropped by a reset of the metric. */
interface Pending {
  apply(): void;
  drop(): void;
}
const pendingOf = new WeakMap<object, Pending[]>();

/** Applies `pending` before the metric's own collect() each time it is read, and drops it when the metric is reset. */
function beforeRead(metric: object, pending: Pending): void {
  let all = pendingOf.get(metric);
  if (!all) {
    const list: Pending[] = [];
    all = list;
    pendingOf.set(metric, list);
    const target = metric as Collectable;
    const ownCollect = target.collect;
    const ownReset = target.reset;
    target.collect = function (this: unknown) {
      for (const p of list) p.apply();
      return ownCollect?.call(this);
    };
    target.reset = function (this: unknown) {
      for (const p of list) p.drop();
      ownReset.call(this);
    };
  }
  all.push(pending);
}

/** One series of a counter, counted in a plain number until read. */
export class DeferredCount {
  private pending = 0;

  constructor(counter: Counter<string>, labels: LabelValues<string> = {}) {
    beforeRead(counter, {
      apply: () => {
        if (this.pending === 0) return;
        const by = this.pending;
        this.pending = 0;
        counter.inc(labels, by);
      },
      drop: () => void (this.pending = 0),
    });
  }

  inc(by = 1): void {
    this.pending += by;
  }
}

/** The series of a counter by one varying label value (a network, an outcome), made on first use. */
export class DeferredCounts {
  private readonly series = new Map<string, DeferredCount>();

  constructor(
    private readonly counter: Counter<string>,
    private readonly labelsFor: (value: string) => LabelValues<string>,
  ) {}

  of(value: string): DeferredCount {
    let count = this.series.get(value);
    if (!count) {
      count = new DeferredCount(this.counter, this.labelsFor(value));
      this.series.set(value, count);
    }
    return count;
  }
}

/** Observations held before reaching the histogram, at most this many per series (then applied at once). */
const HELD_OBSERVATIONS = 512;

/** One series of a histogram: observations held in an array until read (or until it is full). */
export class DeferredObservations {
  private readonly values = new Float64Array(HELD_OBSERVATIONS);
  private held = 0;

  constructor(
    private readonly histogram: Histogram<string>,
    private readonly labels: LabelValues<string> = {},
  ) {
    beforeRead(histogram, { apply: () => this.apply(), drop: () => void (this.held = 0) });
  }

  observe(value: number): void {
    // A value the histogram refuses throws here, at its caller, as it did before (never at a read).
    if (!Number.isFinite(value)) return this.histogram.observe(this.labels, value);
    this.values[this.held++] = value;
    if (this.held === HELD_OBSERVATIONS) this.apply();
  }

  private apply(): void {
    const held = this.held;
    this.held = 0;
    for (let i = 0; i < held; i++) this.histogram.observe(this.labels, this.values[i]);
  }
}

/** A gauge (without labels) whose latest value is set when read. */
export class DeferredGauge {
  private value: number | null = null;

  constructor(gauge: Gauge<string>) {
    beforeRead(gauge, {
      apply: () => {
        if (this.value === null) return;
        const value = this.value;
        this.value = null;
        gauge.set(value);
      },
      drop: () => void (this.value = null),
    });
  }

  set(value: number): void {
    this.value = value;
  }
}
