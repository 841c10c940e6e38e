import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { DeferredCount, DeferredCounts, DeferredGauge, DeferredObservations } from "../../src/metrics/deferred.js";

/** The value of the series whose line starts with `prefix` in the registry's text, read as a scrape reads it. */
async function scraped(registry: Registry, prefix: string): Promise<number | undefined> {
  const line = (await registry.metrics()).split("\n").find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe("hot-path metric updates held until the metrics are read", () => {
  test("counts, by label value, are all there at every scrape, and only once", async () => {
    const registry = new Registry();
    const counter = new Counter({ name: "t_total", help: "h", labelNames: ["direction", "network"], registers: [registry] });
    const byNetwork = new DeferredCounts(counter, (network) => ({ direction: "out", network }));
    const plain = new DeferredCount(counter, { direction: "in", network: "a" });
    for (let i = 0; i < 3; i++) byNetwork.of("a").inc();
    byNetwork.of("b").inc();
    plain.inc(2);
    assert.equal(await scraped(registry, 't_total{direction="out",network="a"}'), 3);
    assert.equal(await scraped(registry, 't_total{direction="out",network="b"}'), 1);
    assert.equal(await scraped(registry, 't_total{direction="in",network="a"}'), 2);
    byNetwork.of("a").inc();
    assert.equal(await scraped(registry, 't_total{direction="out",network="a"}'), 4, "a second read adds only what came since");
    assert.equal((await counter.get()).values.find((v) => v.labels.network === "b")?.value, 1, "get() applies them too");
  });

  test("observations reach the histogram's buckets, also past what is held between reads", async () => {
    const registry = new Registry();
    const histogram = new Histogram({ name: "t_seconds", help: "h", labelNames: ["direction"], buckets: [0.001, 1], registers: [registry] });
    const out = new DeferredObservations(histogram, { direction: "out" });
    for (let i = 0; i < 1500; i++) out.observe(i % 2 === 0 ? 0.0005 : 0.5);
    assert.equal(await scraped(registry, 't_seconds_count{direction="out"}'), 1500);
    assert.equal(await scraped(registry, 't_seconds_bucket{le="0.001",direction="out"}'), 750);
    assert.ok(Math.abs((await scraped(registry, 't_seconds_sum{direction="out"}'))! - (750 * 0.0005 + 750 * 0.5)) < 1e-6);
  });

  test("a value the histogram refuses throws at its caller, and later observations and reads are unharmed", async () => {
    const registry = new Registry();
    const histogram = new Histogram({ name: "t_bad_seconds", help: "h", buckets: [1], registers: [registry] });
    const series = new DeferredObservations(histogram);
    series.observe(0.1);
    assert.throws(() => series.observe(NaN));
    series.observe(0.2);
    assert.equal(await scraped(registry, "t_bad_seconds_count"), 2);
  });

  test("updates held when the metrics are reset are dropped with them", async () => {
    const registry = new Registry();
    const counter = new Counter({ name: "t_reset_total", help: "h", registers: [registry] });
    const count = new DeferredCount(counter);
    count.inc();
    registry.resetMetrics();
    assert.equal(await scraped(registry, "t_reset_total"), 0);
    count.inc();
    assert.equal(await scraped(registry, "t_reset_total"), 1);
  });

  test("a gauge shows the latest value set, and a metric's own collect() still runs", async () => {
    const registry = new Registry();
    let ownCollects = 0;
    const gauge = new Gauge({ name: "t_depth", help: "h", registers: [registry], collect: () => void ownCollects++ });
    const depth = new DeferredGauge(gauge);
    depth.set(5);
    depth.set(2);
    assert.equal(await scraped(registry, "t_depth"), 2);
    assert.equal(await scraped(registry, "t_depth"), 2, "unchanged until set again");
    depth.set(0);
    assert.equal(await scraped(registry, "t_depth"), 0);
    assert.equal(ownCollects, 3);
  });
});
