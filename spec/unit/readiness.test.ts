/** /ready's checks and the canary's bookkeeping, with stand-ins for the store, the bot and the pool. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { IrcConnection, IrcMessage } from "../../src/irc/IrcConnection.js";
import type { NetworkPool } from "../../src/irc/NetworkPool.js";
import { registry } from "../../src/metrics/metrics.js";
import { Canary } from "../../src/ops/Canary.js";
import { networkCheck, ReadinessChecks, type ReadinessSources } from "../../src/ops/Readiness.js";
import type { DataStore } from "../../src/store/DataStore.js";

const HEALTH = { homeserverPingIntervalMs: 1_000, homeserverMaxSilenceSeconds: 60, maxJournalAgeSeconds: 300, storeTimeoutMs: 50 };

function bot(state: string, joined: string[], wanted: string[]) {
  return { state, nick: "Bot", isJoined: (c: string) => joined.includes(c), wants: (c: string) => wanted.includes(c) } as unknown as IrcConnection;
}

function sources(overrides: Partial<ReadinessSources> = {}): ReadinessSources {
  return {
    store: { getRecord: async () => null } as unknown as DataStore,
    homeserverLastAnsweredAt: () => Date.now() - 1_000,
    journal: () => ({ pending: 0, oldestSince: null }),
    networks: () => [{ id: "net", bot: bot("connected", ["#a"], ["#a"]), channels: ["#a"] }],
    canaries: () => [],
    ...overrides,
  };
}

const failing = async (s: ReadinessSources) => {
  const r = await new ReadinessChecks(HEALTH, s).evaluate();
  return { ready: r.ready, failing: r.checks.filter((c) => !c.ok).map((c) => c.name), checks: r.checks };
};

describe("readiness", () => {
  test("ready when the store, the homeserver, the journal and every bot are fine", async () => {
    const r = await failing(sources());
    assert.deepEqual(r, { ...r, ready: true, failing: [] });
    assert.deepEqual(r.checks.map((c) => c.name), ["store", "homeserver", "journal", "network:net"]);
  });

  test("a store that does not answer in time fails the store check", async () => {
    const r = await failing(sources({ store: { getRecord: () => new Promise(() => undefined) } as unknown as DataStore }));
    assert.deepEqual(r.failing, ["store"]);
    assert.match(r.checks[0].detail, /no answer within 50 ms/);
  });

  test("a homeserver silent for longer than allowed, or never heard, fails", async () => {
    assert.deepEqual((await failing(sources({ homeserverLastAnsweredAt: () => Date.now() - 61_000 }))).failing, ["homeserver"]);
    assert.deepEqual((await failing(sources({ homeserverLastAnsweredAt: () => 0 }))).failing, ["homeserver"]);
  });

  test("a journal whose oldest event waits too long fails; a young one does not", async () => {
    assert.deepEqual((await failing(sources({ journal: () => ({ pending: 3, oldestSince: Date.now() - 301_000 }) }))).failing, ["journal"]);
    assert.deepEqual((await failing(sources({ journal: () => ({ pending: 3, oldestSince: Date.now() - 10_000 }) }))).failing, []);
  });

  test("a network: the bot connected and in every channel it still wants", () => {
    assert.equal(networkCheck("n", bot("disconnected", [], ["#a"]), ["#a"]).ok, false);
    const missing = networkCheck("n", bot("connected", ["#a"], ["#a", "#b"]), ["#a", "#b"]);
    assert.deepEqual(missing, { name: "network:n", ok: false, detail: "connected as Bot, in 1 of 2 channels; not in #b yet" });
    // IRC refused it for good (banned): named, but its own metric and notices cover it.
    const refused = networkCheck("n", bot("connected", ["#a"], ["#a"]), ["#a", "#banned"]);
    assert.deepEqual(refused, { name: "network:n", ok: true, detail: "connected as Bot, in 1 of 2 channels; kept out of #banned by IRC" });
  });
});

describe("canary", () => {
  const fakeConnection = () => {
    const sent: string[] = [];
    const conn = {
      state: "connected",
      sent,
      want: () => undefined,
      connect: async () => undefined,
      join: async () => undefined,
      isJoined: () => true,
      send: async (_kind: string, _target: string, text: string) => void sent.push(text),
      quit: async () => undefined,
    };
    return conn;
  };
  const setup = (maxMissed = 2) => {
    const conn = fakeConnection();
    const linkChecks: number[] = [];
    const bot = { casefold: (s: string) => s.toLowerCase(), join: async () => undefined, verifyLink: async () => linkChecks.push(Date.now()) > 0 };
    const pool = { networkId: "canarynet", bot, canaryConnection: () => conn } as unknown as NetworkPool;
    const canary = new Canary(pool, { channel: "#Canary", nick: "Bot-canary", intervalMs: 1_000, maxMissed }, "bye");
    canary.start();
    const probe = () => (canary as unknown as { probe(): void }).probe();
    const line = (text: string, target = "#canary", nick = "Bot-canary") => ({ kind: "privmsg", nick, ident: "", hostname: "", target, text, tags: {}, receivedAt: Date.now() }) as IrcMessage;
    return { canary, conn, probe, line, linkChecks };
  };
  const count = async (name: string) => {
    const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name) as { values: { value: number; labels: Record<string, string>; metricName?: string }[] } | undefined;
    return (metric?.values ?? []).filter((v) => v.labels.network === "canarynet" && (v.metricName ?? name).endsWith(name.endsWith("seconds") ? "_count" : "")).reduce((n, v) => n + v.value, 0);
  };

  test("a probe that comes back is a round trip; one that does not is missed, and maxMissed in a row fail", async () => {
    const { canary, conn, probe, line, linkChecks } = setup();
    try {
      probe();
      await Promise.resolve();
      assert.equal(conn.sent.length, 1);
      assert.equal(canary.observe(line(conn.sent[0])), true);
      assert.equal(await count("bridge_canary_roundtrip_seconds"), 1);
      assert.match(canary.check().detail, /last round trip \d+ ms/);

      // Two probes that never come back (their time passes), then the check fails.
      const pending = (canary as unknown as { pending: Map<string, number> }).pending;
      for (let i = 0; i < 3; i++) {
        for (const [token] of pending) pending.set(token, Date.now() - 5_000);
        probe();
        await Promise.resolve();
      }
      assert.equal(await count("bridge_canary_failures_total"), 2);
      assert.equal(linkChecks.length, 2, "each missed probe makes the bot check its link");
      assert.equal(canary.check().ok, false);
      assert.match(canary.check().detail, /2 probes in a row did not come back/);
      // The next one back heals it.
      canary.observe(line(conn.sent.at(-1)!));
      assert.equal(canary.check().ok, true);
    } finally {
      await canary.stop();
    }
  });

  test("every line of the canary channel is taken (none is relayed); other channels' lines are not", async () => {
    const { canary, line } = setup();
    try {
      assert.equal(canary.observe(line("hello", "#CANARY", "someone")), true);
      assert.equal(canary.observe(line("bridge canary 0000", "#canary")), true);
      assert.equal(canary.check().detail, "no probe back yet");
      assert.equal(canary.observe(line("hello", "#other", "someone")), false);
    } finally {
      await canary.stop();
    }
  });

  test("a canary that is not connected counts as a failed probe", async () => {
    const { canary, conn, probe } = setup(1);
    try {
      conn.state = "disconnected";
      probe();
      assert.equal(canary.check().ok, false);
      assert.match(canary.check().detail, /not connected/);
    } finally {
      await canary.stop();
    }
  });
});

describe("canary and health config", () => {
  const base = (canary: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    homeserver: { url: "http://localhost:8008", domain: "localhost" },
    networks: { net: { name: "Net", address: "irc.example.org", botNick: "Bot", ghostUserTemplate: "net_$NICK", aliasTemplate: "net_$CHANNEL", mappings: { "#Chat": { roomIds: ["!a:localhost"] } }, canary } },
    ...extra,
  });

  test("off without a channel; on with one, with its defaults", async () => {
    const { parseConfig } = await import("../../src/config/load.js");
    const { canarySettings } = await import("../../src/ops/Canary.js");
    const config = parseConfig(base({}));
    assert.equal(canarySettings(config.networks.net), null);
    assert.equal(config.metrics.port, null);
    assert.equal(config.health.homeserverMaxSilenceSeconds, 60);
    const on = parseConfig(base({ channel: "#bridge-canary" }));
    assert.deepEqual(canarySettings(on.networks.net), { channel: "#bridge-canary", nick: "Bot-canary", intervalMs: 60_000, maxMissed: 3 });
    assert.equal(canarySettings(parseConfig(base({ channel: "#bridge-canary", enabled: false })).networks.net), null);
  });

  test("a mapped channel is refused as the canary's (it would speak to people every minute)", async () => {
    const { ConfigError, parseConfig } = await import("../../src/config/load.js");
    assert.throws(() => parseConfig(base({ channel: "#chat" })), (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.startsWith("networks.net.canary.channel: the canary channel must be a channel of its own")));
  });
});

describe("metrics port config", () => {
  test("the metrics port cannot be the appservice port", async () => {
    const { ConfigError, parseConfig } = await import("../../src/config/load.js");
    const raw = (port: number) => ({
      homeserver: { url: "http://localhost:8008", domain: "localhost" },
      appservice: { port: 9995 },
      metrics: { port },
      networks: { net: { name: "Net", address: "irc.example.org", botNick: "Bot", ghostUserTemplate: "net_$NICK", aliasTemplate: "net_$CHANNEL" } },
    });
    assert.equal(parseConfig(raw(9996)).metrics.port, 9996);
    assert.throws(() => parseConfig(raw(9995)), (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.startsWith("metrics.port: must differ")));
  });
});
