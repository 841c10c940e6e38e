/** The rate limiter (token buckets per key, bounded) and the safe defaults of the config. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseConfig } from "../../src/config/load.js";
import { Permissions } from "../../src/bridge/Permissions.js";
import { PortalRefused, Portals } from "../../src/bridge/Portals.js";
import { RateLimiter } from "../../src/bridge/RateLimiter.js";
import type { RoomLinks } from "../../src/bridge/RoomLinks.js";
import { casefold } from "../../src/format/casemap.js";
import type { NetworkPool } from "../../src/irc/NetworkPool.js";

const minimal = (extra: Record<string, unknown> = {}) =>
  parseConfig({
    homeserver: { url: "http://localhost:8008", domain: "example.org" },
    networks: { net: { name: "Net", address: "irc.example.org", botNick: "Bot", ghostUserTemplate: "net_$NICK", aliasTemplate: "net_$CHANNEL" } },
    ...extra,
  });

describe("rate limiter", () => {
  test("a key spends its burst, then gets tokens back at perMinute", () => {
    let now = 0;
    const limiter = new RateLimiter({ burst: 3, perMinute: 2 }, 100, () => now);
    assert.deepEqual([1, 2, 3, 4].map(() => limiter.take("a")), [true, true, true, false]);
    assert.equal(limiter.retryAfterMs("a"), 30_000);
    assert.ok(limiter.take("b"), "another key has its own bucket");
    now = 29_999;
    assert.equal(limiter.take("a"), false);
    now = 30_000;
    assert.equal(limiter.take("a"), true);
    assert.equal(limiter.take("a"), false);
    now = 10 * 60_000;
    assert.deepEqual([1, 2, 3, 4].map(() => limiter.take("a")), [true, true, true, false], "refills up to the burst, no more");
  });

  test("several keys: all must have a token, and a refusal spends none", () => {
    const limiter = new RateLimiter({ burst: 1, perMinute: 1 }, 100, () => 0);
    assert.ok(limiter.take("user", "nick1"));
    assert.equal(limiter.take("user2", "nick1"), false, "nick1 is out of tokens");
    assert.ok(limiter.take("user2", "nick2"), "user2 kept its token after the refusal");
    assert.equal(limiter.take("user", "nick3"), false, "user is out of tokens");
  });

  test("a refused key is told once per window", () => {
    let now = 0;
    const limiter = new RateLimiter({ burst: 1, perMinute: 1 }, 100, () => now);
    assert.ok(limiter.shouldTell("a", 60_000));
    now = 59_999;
    assert.equal(limiter.shouldTell("a", 60_000), false);
    assert.ok(limiter.shouldTell("b", 60_000));
    now = 60_000;
    assert.ok(limiter.shouldTell("a", 60_000));
  });

  test("the map of keys stays bounded under a flood of new keys, forgetting full buckets first", () => {
    let now = 0;
    const limiter = new RateLimiter({ burst: 2, perMinute: 60 }, 50, () => now);
    limiter.take("busy");
    limiter.take("busy");
    for (let i = 0; i < 10_000; i++) {
      limiter.take(`stranger${i}`);
      if (i % 10 === 0) {
        now += 100;
        limiter.take("busy"); // still in use: kept, and still limited
      }
    }
    assert.ok(limiter.size <= 50, `size ${limiter.size}`);
    assert.ok(limiter.size > 0);
  });
});

describe("safe defaults", () => {
  test("permissions left out: the homeserver's own users may use the bridge, other servers may not", () => {
    const config = minimal();
    assert.deepEqual(config.permissions, { "example.org": "user" });
    const p = new Permissions(config.permissions);
    assert.ok(p.mayUse("@alice:example.org"));
    assert.ok(!p.mayUse("@mallory:other.example"));
    assert.ok(!p.mayUse("@mallory:sub.example.org"), "a subdomain is another server");
    assert.ok(!p.isAdmin("@alice:example.org"));
  });

  test("permissions given by the operator are taken as they are (no domain added)", () => {
    assert.deepEqual(minimal({ permissions: { "*": "user" } }).permissions, { "*": "user" });
    assert.deepEqual(minimal({ permissions: { "@a:example.org": "admin" } }).permissions, { "@a:example.org": "admin" });
  });

  test("pool.maxClients is finite; portals and PM rooms are rate-limited; re-invites once an hour", () => {
    const net = minimal().networks.net;
    assert.equal(net.pool.maxClients, 2000);
    assert.deepEqual(net.portals.rateLimit, { burst: 5, perMinute: 2 });
    assert.deepEqual(net.privateMessages.rateLimit, { burst: 5, perMinute: 3 });
    assert.equal(net.privateMessages.reinviteAfterMs, 3_600_000);
  });
});

describe("told once", () => {
  test("with an infinite window a key is told once, until the bounded map forgets it", () => {
    const told = new RateLimiter({ burst: 1, perMinute: 1 }, 3, () => 0);
    assert.ok(told.shouldTell("@a:x", Infinity));
    assert.equal(told.shouldTell("@a:x", Infinity), false);
    for (const k of ["@b:x", "@c:x", "@d:x"]) told.shouldTell(k, Infinity);
    assert.ok(told.size <= 3);
    assert.ok(told.shouldTell("@a:x", Infinity), "forgotten as the least recently used");
  });
});

describe("portal rate limits", () => {
  // A pool whose bot is never connected: each allowed request gets as far as waiting for it.
  const config = minimal();
  const pool = {
    networkId: "net",
    config: config.networks.net,
    bot: { chanTypes: "#&", caseMapping: "rfc1459", casefold: (s: string) => casefold(s), whenConnected: () => Promise.reject(new Error("offline")) },
  } as unknown as NetworkPool;
  const links = { portalRoomOf: () => null } as unknown as RoomLinks;
  const refusedFast = (err: unknown) => err instanceof PortalRefused && /too fast/.test(err.message);

  test("per requester: the burst, then refused with the time to wait; another requester is not held back", async () => {
    const portals = new Portals(config, links, new Map([["net", pool]]), () => undefined as never, () => undefined);
    const alice = portals.openerFor({ userId: "@alice:example.org" });
    for (let i = 0; i < 5; i++) await assert.rejects(alice.open("net", `#a${i}`), /offline/);
    await assert.rejects(alice.open("net", "#a5"), (err) => refusedFast(err) && /try again in 30 s/.test((err as Error).message));
    await assert.rejects(portals.openerFor({ userId: "@bob:example.org" }).open("net", "#b0"), /offline/);
    // An IRC nick's invites count against the nick too, whatever its case.
    for (let i = 0; i < 5; i++) await assert.rejects(portals.open("net", `#n${i}`, null, null, { userId: `@u${i}:example.org`, nick: "Spammer" }), /offline/);
    await assert.rejects(portals.open("net", "#n5", null, null, { userId: "@u9:example.org", nick: "SPAMMER" }), refusedFast);
  });

  test("alias queries (no requester known) share one bucket ten times as large", async () => {
    const portals = new Portals(config, links, new Map([["net", pool]]), () => undefined as never, () => undefined);
    for (let i = 0; i < 50; i++) await assert.rejects(portals.open("net", `#q${i}`, `#net_#q${i}:example.org`), /offline/);
    await assert.rejects(portals.open("net", "#q50", "#net_#q50:example.org"), refusedFast);
    await assert.rejects(portals.openerFor({ userId: "@alice:example.org" }).open("net", "#mine"), /offline/, "users asking by !join are not held back");
  });
});
