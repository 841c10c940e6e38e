/**
 * contrib/grafana-dashboard.json queries only metrics the bridge exposes: each PromQL
 * expression's metric names are looked up in the registry's exposition (what /metrics serves).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { collectProcessMetrics, registry } from "../../src/metrics/metrics.js";
import { dashboardExpressions, exposedMetricNames, promqlMetricNames } from "../harness/dashboard.js";

const ROOT = join(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "../../..");

describe("grafana dashboard", () => {
  test("metric names are read out of PromQL, not functions, labels or variables", () => {
    assert.deepEqual(promqlMetricNames('histogram_quantile(0.95, sum by (le, network) (rate(bridge_x_bucket{network=~"$network"}[$__rate_interval])))'), ["bridge_x_bucket"]);
    assert.deepEqual(promqlMetricNames("sum(rate(a_sum[5m])) / sum(rate(a_count[5m])) * 60"), ["a_sum", "a_count"]);
    assert.deepEqual(promqlMetricNames('min by (check) (bridge_health_check_ok) or on (check) up{job="x"}'), ["bridge_health_check_ok", "up"]);
  });

  test("the exposition's names include each histogram's _bucket, _sum and _count", () => {
    const names = exposedMetricNames("# HELP h x\n# TYPE h histogram\n# TYPE c counter\nc_total 1\n");
    assert.deepEqual([...names].sort(), ["c", "c_total", "h_bucket", "h_count", "h_sum"]);
  });

  test("every metric the dashboard queries is in /metrics", async () => {
    collectProcessMetrics();
    const exposed = exposedMetricNames(await registry.metrics());
    const dashboard = JSON.parse(readFileSync(join(ROOT, "contrib/grafana-dashboard.json"), "utf8")) as unknown;
    const expressions = dashboardExpressions(dashboard);
    assert.ok(expressions.length >= 15, `expected a real dashboard, got ${expressions.length} queries`);
    const queried = [...new Set(expressions.flatMap(promqlMetricNames))];
    const missing = queried.filter((name) => !exposed.has(name));
    assert.deepEqual(missing, []);
    // It covers what an operator needs to see.
    for (const needed of ["bridge_messages_relayed_total", "bridge_canary_roundtrip_seconds_bucket", "bridge_canary_failures_total", "bridge_journal_oldest_pending_seconds", "bridge_homeserver_requests_total", "process_resident_memory_bytes", "bridge_room_queue_depth"]) {
      assert.ok(queried.includes(needed), `the dashboard shows ${needed}`);
    }
  });
});
