/**
 * Health that means "traffic flows": /health and /ready on the metrics port (and not on the
 * appservice port), /ready red when the homeserver stops answering, when the bot's IRC link is
 * cut, and when the canary's lines stop coming back through the bot (a link that is silently
 * dead, which nothing else notices); green again once each is repaired.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { dashboardExpressions, exposedMetricNames, promqlMetricNames } from "../harness/dashboard.js";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient } from "../harness/matrixClient.js";
import { freePort } from "../harness/ports.js";
import { NETWORK, Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}
interface Readiness {
  status: number;
  ready: boolean;
  checks: Check[];
}

const DASHBOARD = join(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "../../../contrib/grafana-dashboard.json");
const MAX_MISSED = 2;

describe("health and readiness", { timeout: 420_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let chief: IrcTestClient;
  let roomId: string;
  let opsPort: number;

  const get = (port: number, path: string) => fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(10_000) });
  const ready = async (): Promise<Readiness> => {
    const res = await get(opsPort, "/ready");
    const body = (await res.json()) as { ready: boolean; checks: Check[] };
    return { status: res.status, ...body };
  };
  const metricsText = async () => (await get(opsPort, "/metrics")).text();
  const sample = (text: string, pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 0);
  const failing = (r: Readiness) => r.checks.filter((c) => !c.ok).map((c) => c.name);
  const waitReady = (what: string, timeoutMs = 90_000) => waitFor(what, async () => ((await ready()).status === 200 ? true : undefined), timeoutMs, 200);
  /** Waits for a 503 whose failing checks include `name`. */
  const waitFailing = (name: string, timeoutMs: number) =>
    waitFor(`/ready to fail ${name}`, async () => {
      const r = await ready();
      return r.status === 503 && failing(r).includes(name) ? r : undefined;
    }, timeoutMs, 100);

  before(async () => {
    stack = await Stack.start({ proxy: true, homeserverProxy: true });
    opsPort = await freePort();
    stack.configOverrides = {
      metrics: { enabled: true, port: opsPort, bindAddress: "127.0.0.1" },
      health: { homeserverPingIntervalMs: 1_000, homeserverMaxSilenceSeconds: 5, maxJournalAgeSeconds: 120, storeTimeoutMs: 5_000 },
    };
    stack.networkOverrides = { canary: { channel: "#canary", intervalMs: 1_500, maxMissed: MAX_MISSED } };
    alice = await stack.matrixUser("alice");
    roomId = await alice.createRoom({ name: "Health", preset: "public_chat" });
    stack.mappings = { "#health": { roomIds: [roomId] } };
    await stack.startBridge();
    chief = await stack.ircUser("chief", ["#health"]);
  });

  after(async () => {
    await stack?.stop();
  });

  test("/health, /ready and /metrics are served on the metrics port, not on the appservice port", async () => {
    const health = await get(opsPort, "/health");
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { status: string }).status, "ok");
    assert.match(await metricsText(), /^bridge_appservice_transactions_total/m);
    for (const path of ["/metrics", "/ready", "/health"]) {
      const res = await get(stack.bridgePort, path);
      assert.equal(res.status, 404, `${path} is not on the appservice port`);
    }
  });

  test("/ready answers 200 once traffic flows, listing every check", async () => {
    await waitReady("/ready to answer 200");
    const r = await ready();
    assert.equal(r.ready, true);
    const names = r.checks.map((c) => c.name).sort();
    assert.deepEqual(names, ["canary:testnet", "homeserver", "journal", "network:testnet", "store"]);
    for (const check of r.checks) {
      assert.equal(check.ok, true, `${check.name}: ${check.detail}`);
      assert.equal(typeof check.detail, "string");
    }
  });

  test("the canary's round trip is measured and /ready reports it; the dashboard queries only metrics that exist", async () => {
    const roundTrips = new RegExp(`^bridge_canary_roundtrip_seconds_count\\{network="${NETWORK}"\\} (\\d+)`, "m");
    await waitFor("two canary round trips", async () => sample(await metricsText(), roundTrips) >= 2, 60_000, 250);
    const canary = (await ready()).checks.find((c) => c.name === `canary:${NETWORK}`)!;
    assert.match(canary.detail, /round trip \d+ ms/);
    // The canary's lines stay out of Matrix and off the bridged channel.
    assert.ok(!chief.lines.some((l) => /canary/i.test(l.text)), "no canary line in #health");

    const exposed = exposedMetricNames(await metricsText());
    const expressions = dashboardExpressions(JSON.parse(readFileSync(DASHBOARD, "utf8")));
    assert.ok(expressions.length >= 15, `the dashboard has panels (${expressions.length} queries)`);
    const missing = [...new Set(expressions.flatMap(promqlMetricNames))].filter((name) => !exposed.has(name));
    assert.deepEqual(missing, [], "every metric the dashboard queries is in /metrics");
  });

  test("a silently dead bot link: canary probes are missed, counted, and /ready fails after N", async () => {
    const failures = new RegExp(`^bridge_canary_failures_total\\{[^}]*network="${NETWORK}"[^}]*\\} (\\d+)`, "gm");
    const failuresNow = async () => [...(await metricsText()).matchAll(failures)].reduce((n, m) => n + Number(m[1]), 0);
    const before = await failuresNow();
    // The bot connected first (the canary only after the bot was in its channels): its link goes
    // silent both ways, as a dead route would, and the bot is not told.
    const botLink = stack.proxy!.connections[0];
    await chief.join("#canary");
    botLink.freezeBothWays();
    const started = Date.now();
    const r = await waitFailing(`canary:${NETWORK}`, 60_000);
    // The canary's own link still works (its probes reach IRC): only the bot's read path is dead,
    // and the canary's own copy of its line (echo-message) never counts as a round trip.
    const probes = chief.lines.filter((l) => l.target === "#canary" && /^bridge canary [0-9a-f]+$/.test(l.text) && l.nick === "BridgeBot-canary");
    await chief.waitForLine((l) => l.target === "#canary" && !probes.includes(l) && l.nick === "BridgeBot-canary", "a probe sent while the bot's link is frozen", 20_000);
    console.log(`canary: /ready 503 ${Date.now() - started} ms after the bot's link froze: ${JSON.stringify(r.checks.filter((c) => !c.ok))}`);
    assert.ok((await failuresNow()) - before >= MAX_MISSED, "each missed probe is counted");
    assert.ok(r.checks.find((c) => c.name === `network:${NETWORK}`)!.ok, "the bot itself still believes it is connected: only the canary sees it");
    // Repaired without help: a missed probe makes the bot check its link (PING); the silent
    // link is dropped and the bot reconnects (irc-framework's own ping timeout takes minutes).
    const links = stack.proxy!.connections.length;
    await waitReady("/ready 200 after the bot found its link dead and reconnected", 45_000);
    console.log(`canary: /ready 200 again ${Date.now() - started} ms after the freeze, the bot having replaced its link by itself`);
    assert.ok(botLink.client.destroyed, "the bridge dropped the silent link (the test never cut it)");
    assert.ok(stack.proxy!.connections.length > links, "the bot opened a new connection");
  });

  test("the homeserver not answering makes /ready fail on the homeserver check, and it recovers", async () => {
    await waitReady("/ready 200 first");
    stack.homeserverProxy!.freezeAll();
    const started = Date.now();
    try {
      const r = await waitFailing("homeserver", 60_000);
      const ms = Date.now() - started;
      console.log(`homeserver: /ready 503 ${ms} ms after the freeze: ${r.checks.find((c) => c.name === "homeserver")!.detail}`);
      // Configured at 5 s of silence; a ping in flight may take its timeout.
      assert.ok(ms < 30_000, `noticed in ${ms} ms`);
    } finally {
      stack.homeserverProxy!.thawAll();
    }
    await waitReady("/ready 200 after the thaw", 60_000);
  });

  test("the bot's IRC link cut makes /ready fail on the network until it has rejoined", async () => {
    await waitReady("/ready 200 first");
    for (const connection of stack.proxy!.connections) connection.cut();
    const r = await waitFailing(`network:${NETWORK}`, 20_000);
    assert.match(r.checks.find((c) => c.name === `network:${NETWORK}`)!.detail, /not connected|not in/);
    await waitReady("/ready 200 after the bot rejoined");
    const network = (await ready()).checks.find((c) => c.name === `network:${NETWORK}`)!;
    assert.match(network.detail, /in 2 of 2 channels/);
    // And traffic does flow.
    chief.say("#health", "after the cut");
    await alice.waitForMessage(roomId, (e) => e.content.body === "after the cut", 60_000);
  });

  test("the IRCd stopped: /ready 503 and canary failures counted; back to 200 after it returns, and the canary moves", async () => {
    await waitReady("/ready 200 first");
    const roundTrips = new RegExp(`^bridge_canary_roundtrip_seconds_count\\{network="${NETWORK}"\\} (\\d+)`, "m");
    const failures = new RegExp(`^bridge_canary_failures_total\\{[^}]*network="${NETWORK}"[^}]*\\} (\\d+)`, "gm");
    const failuresNow = async () => [...(await metricsText()).matchAll(failures)].reduce((n, m) => n + Number(m[1]), 0);
    const failuresBefore = await failuresNow();
    await stack.ircd.stop();
    const r = await waitFailing(`network:${NETWORK}`, 30_000);
    assert.ok(failing(r).includes(`network:${NETWORK}`));
    await waitFor("the canary to count the outage", async () => (await failuresNow()) > failuresBefore, 30_000, 250);
    await stack.ircd.start();
    await waitReady("/ready 200 after the IRCd returned", 120_000);
    const backAt = sample(await metricsText(), roundTrips);
    await waitFor("canary round trips after the IRCd returned", async () => sample(await metricsText(), roundTrips) > backAt, 30_000, 250);
    // The IRC user of the earlier tests was on the stopped server: a new one checks traffic.
    chief = await stack.ircUser("chief2", ["#health"]);
    chief.say("#health", "after the IRCd came back");
    await alice.waitForMessage(roomId, (e) => e.content.body === "after the IRCd came back", 60_000);
  });

  test("without metrics.port, /metrics, /health and /ready are on the appservice port", async () => {
    await stack.bridge.stop();
    stack.configOverrides = { ...stack.configOverrides, metrics: { enabled: true } };
    await stack.startBridge();
    opsPort = stack.bridgePort;
    await waitReady("/ready 200 on the appservice port");
    assert.equal((await get(stack.bridgePort, "/health")).status, 200);
    assert.match(await metricsText(), /^bridge_health_check_ok\{check="canary:testnet"\} 1/m);
  });
});
