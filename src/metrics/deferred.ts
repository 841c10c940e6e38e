/**
 * Metric updates on the relay's hot path, applied when the metrics are read. For each call,
 * prom-client checks the labels, hashes them and looks the series up; at a steady few messages
 * a second every call runs cold, and the eight or so per relayed message were ~8% of its
 * JavaScript in CPU profiles (bench/relayCost.ts). Here a call adds to a plain number or array,
 * and the metric's `collect()` (which prom-client runs before every read: /metrics, `get()`)
 * applies what is pending first, so every read sees every update.
 */
import type { Counter, Gauge, Histogram, LabelValues } from "prom-client";

type Collectable = { collect?: () => unknown };
const flushesOf = new WeakMap<object, (() => void)[]>();

/** Runs `flush` before the metric's own collect() each time the metric is read. */
function beforeRead(metric: object, flush: () => void): void {
  let flushes = flushesOf.get(metric);
  if (!flushes) {
    const all: (() => void)[] = [];
    flushes = all;
    flushesOf.set(metric, all);
    const target = metric as Collectable;
    const own = target.collect;
    target.collect = function (this: unknown) {
      for (const f of all) f();
      return own?.call(this);
    };
  }
  flushes.push(flush);
}

/** One series of a counter, counted in a plain number until read. */
export class DeferredCount {
  private pending = 0;

  constructor(counter: Counter<string>, labels: LabelValues<string> = {}) {
    beforeRead(counter, () => {
      if (this.pending === 0) return;
      counter.inc(labels, this.pending);
      this.pending = 0;
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
    beforeRead(histogram, () => this.apply());
  }

  observe(value: number): void {
    this.values[this.held++] = value;
    if (this.held === HELD_OBSERVATIONS) this.apply();
  }

  private apply(): void {
    for (let i = 0; i < this.held; i++) this.histogram.observe(this.labels, this.values[i]);
    this.held = 0;
  }
}

/** A gauge (without labels) whose latest value is set when read. */
export class DeferredGauge {
  private value: number | null = null;

  constructor(gauge: Gauge<string>) {
    beforeRead(gauge, () => {
      if (this.value === null) return;
      gauge.set(this.value);
      this.value = null;
    });
  }

  set(value: number): void {
    this.value = value;
  }
}
