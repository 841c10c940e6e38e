import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import express from "express";
import { parseConfig } from "../../src/config/load.js";
import type { ProvisioningHttpConfig } from "../../src/config/schema.js";
import { ProvisioningApi, readSecretFile } from "../../src/http/ProvisioningApi.js";
import { isPrivateAddress, OpenIdError, OpenIdVerifier } from "../../src/http/openId.js";
import { ProvisioningError, type LinkProvisioner, type LinkRequestInput, type UnlinkInput } from "../../src/provisioning/types.js";
import { NedbDataStore } from "../../src/store/NedbDataStore.js";

const SECRET = "s3cret-s3cret-s3cret-s3cret-s3cret-42";

/** A provisioner that records its calls and answers what the test sets. */
class FakeProvisioner implements LinkProvisioner {
  linkCalls: LinkRequestInput[] = [];
  unlinkCalls: UnlinkInput[] = [];
  linkError: Error | null = null;
  unlinkError: Error | null = null;
  ops = ["alice", "bob"];
  limit: number | null = null;
  networks() {
    return [
      { networkId: "libera", name: "Libera.Chat", domain: "irc.libera.chat", botUserId: "@ircbot:example.org" },
      { networkId: "oftc", name: "OFTC", domain: "irc.oftc.net", botUserId: "@ircbot:example.org" },
    ];
  }
  async channelOps(networkId: string, channel: string) {
    return networkId === "libera" && channel === "#chan" ? this.ops : [];
  }
  async requestLink(input: LinkRequestInput) {
    this.linkCalls.push(input);
    if (this.linkError) throw this.linkError;
    return { status: "pending" as const, opNick: input.opNick ?? "", expiresAt: 1_000_000 };
  }
  async unlink(input: UnlinkInput) {
    this.unlinkCalls.push(input);
    if (this.unlinkError) throw this.unlinkError;
  }
  listLinks(roomId: string) {
    return roomId === "!room:example.org" ? [{ networkId: "libera", channel: "#chan", roomId, origin: "plumbed" as const }] : [];
  }
  limits() {
    return { count: 3, limit: this.limit };
  }
}

function httpConfig(overrides: Record<string, unknown> = {}): ProvisioningHttpConfig {
  return parseConfig({
    homeserver: { url: "http://localhost:8008", domain: "example.org" },
    networks: { libera: { name: "L", address: "irc.libera.chat", botNick: "bot", ghostUserTemplate: "irc_$NICK", aliasTemplate: "irc_$CHANNEL" } },
    provisioning: { http: { enabled: true, secretFile: "/nonexistent", rateLimit: { burst: 50, perMinute: 60 }, maxBodyBytes: 2048, ...overrides } },
  }).provisioning.http;
}

interface Answer {
  status: number;
  headers: Headers;
  json: Record<string, unknown> & { errcode?: string };
}

describe("provisioning HTTP API", () => {
  let dir: string;
  let store: NedbDataStore;
  let server: Server;
  let base: string;
  let provisioner: FakeProvisioner;
  let now = 1_000;
  const openIdUsers = new Map<string, string>([["good-token", "@widget:example.org"]]);
  let api: ProvisioningApi | null = null;

  const call = async (method: string, path: string, body?: unknown, token: string | null = SECRET, raw?: string): Promise<Answer> => {
    const headers: Record<string, string> = {};
    if (token !== null) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined || raw !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(`${base}/_matrix/provision${path}`, { method, headers, body: raw ?? (body === undefined ? undefined : JSON.stringify(body)) });
    const text = await res.text();
    return { status: res.status, headers: res.headers, json: text ? (JSON.parse(text) as Answer["json"]) : {} };
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "prov-api-"));
    store = new NedbDataStore(dir);
    await store.open();
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const mount = async (overrides: Record<string, unknown> = {}) => {
    server?.close();
    provisioner = new FakeProvisioner();
    const app = express();
    api = new ProvisioningApi(httpConfig(overrides), provisioner, store, app, {
      secret: SECRET,
      now: () => now,
      openId: {
        userOf: async (matrixServer, token) => {
          const user = openIdUsers.get(token);
          if (!user || !user.endsWith(`:${matrixServer}`)) throw new OpenIdError("the homeserver did not accept the token (401)");
          return user;
        },
      },
    });
    server = createServer(app);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  beforeEach(() => mount());
  after(() => server?.close());
  const strictLimits = () => mount({ rateLimit: { burst: 5, perMinute: 6 } });

  const link = { remote_room_server: "irc.libera.chat", remote_room_channel: "#chan", matrix_room_id: "!room:example.org", op_nick: "alice", user_id: "@mod:example.org" };

  test("without a token, or with a wrong one: 401 M_AS_BAD_TOKEN, and the provisioner is never asked", async () => {
    for (const token of [null, "wrong", `${SECRET}x`, ""]) {
      const res = await call("POST", "/v1/link", link, token);
      assert.equal(res.status, 401, String(token));
      assert.equal(res.json.errcode, "M_AS_BAD_TOKEN");
      assert.equal(typeof res.json.error, "string");
    }
    assert.equal((await call("GET", "/v1/querynetworks", undefined, "nope")).status, 401);
    assert.equal(provisioner.linkCalls.length, 0);
  });

  test("querynetworks lists the networks in the reference's shape", async () => {
    const res = await call("GET", "/v1/querynetworks");
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, {
      servers: [
        { network_id: "libera", bot_user_id: "@ircbot:example.org", desc: "Libera.Chat", fields: { domain: "irc.libera.chat" } },
        { network_id: "oftc", bot_user_id: "@ircbot:example.org", desc: "OFTC", fields: { domain: "irc.oftc.net" } },
      ],
    });
  });

  test("link maps remote_room_server to the network and acts for user_id", async () => {
    const res = await call("POST", "/v1/link", { ...link, key: "sesame" });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { status: "pending", op_nick: "alice", expires_ts: 1_000_000 });
    assert.deepEqual(provisioner.linkCalls, [{ networkId: "libera", channel: "#chan", roomId: "!room:example.org", userId: "@mod:example.org", opNick: "alice", key: "sesame" }]);
  });

  test("bad bodies: 400 M_BAD_JSON naming the field; unknown servers 404 IRC_UNKNOWN_NETWORK", async () => {
    const cases: [unknown, string][] = [
      [{ ...link, remote_room_channel: "chan" }, "remote_room_channel"],
      [{ ...link, matrix_room_id: "room" }, "matrix_room_id"],
      [{ ...link, op_nick: undefined }, "op_nick"],
      [{ ...link, op_nick: "a b" }, "op_nick"],
      [{ ...link, user_id: "mod" }, "user_id"],
      [{ ...link, user_id: undefined }, "user_id"],
      [{ ...link, key: 5 }, "key"],
      [[link], "object"],
    ];
    for (const [body, field] of cases) {
      const res = await call("POST", "/v1/link", body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.json.errcode, "M_BAD_JSON");
      assert.match(String(res.json.error), new RegExp(field));
    }
    const unknown = await call("POST", "/v1/link", { ...link, remote_room_server: "irc.example.net" });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.errcode, "IRC_UNKNOWN_NETWORK");
    assert.equal(provisioner.linkCalls.length, 0);
  });

  test("the flow's refusals keep their code and status; other failures are 500 without details", async () => {
    for (const [code, status] of [["IRC_EXISTING_REQUEST", 409], ["IRC_EXISTING_MAPPING", 409], ["IRC_NOT_ENOUGH_POWER", 403], ["IRC_BAD_OPERATOR_TARGET", 400], ["IRC_BRIDGE_AT_LIMIT", 500]] as const) {
      provisioner.linkError = new ProvisioningError(code, `refused: ${code}`, status);
      const res = await call("POST", "/v1/link", link);
      assert.equal(res.status, status);
      assert.deepEqual(res.json, { errcode: code, error: `refused: ${code}` });
    }
    provisioner.linkError = new Error("database password is hunter2");
    const res = await call("POST", "/v1/link", link);
    assert.equal(res.status, 500);
    assert.deepEqual(res.json, { errcode: "M_UNKNOWN", error: "Internal error" });
  });

  test("querylink lists the channel's operators", async () => {
    const res = await call("POST", "/v1/querylink", { remote_room_server: "irc.libera.chat", remote_room_channel: "#chan" });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { operators: ["alice", "bob"] });
  });

  test("unlink passes the user on and answers {}; a refusal is 403 IRC_NOT_ENOUGH_POWER", async () => {
    const body = { remote_room_server: "irc.libera.chat", remote_room_channel: "#chan", matrix_room_id: "!room:example.org", user_id: "@mod:example.org" };
    assert.deepEqual(await call("POST", "/v1/unlink", body), { status: 200, headers: (await call("POST", "/v1/unlink", body)).headers, json: {} });
    assert.deepEqual(provisioner.unlinkCalls[0], { networkId: "libera", channel: "#chan", roomId: "!room:example.org", userId: "@mod:example.org" });
    provisioner.unlinkError = new ProvisioningError("IRC_NOT_ENOUGH_POWER", "not a moderator", 403);
    const res = await call("POST", "/v1/unlink", { ...body, user_id: "@pleb:example.org" });
    assert.equal(res.status, 403);
    assert.equal(res.json.errcode, "IRC_NOT_ENOUGH_POWER");
  });

  test("listlinks and limits in the reference's shapes", async () => {
    const links = await call("GET", `/v1/listlinks/${encodeURIComponent("!room:example.org")}`);
    assert.equal(links.status, 200);
    assert.deepEqual(links.json, [{ matrix_room_id: "!room:example.org", remote_room_channel: "#chan", remote_room_server: "irc.libera.chat", network_id: "libera", origin: "plumbed" }]);
    assert.deepEqual((await call("GET", "/v1/listlinks/!other:example.org")).json, []);
    assert.equal((await call("GET", "/v1/listlinks/not-a-room")).status, 400);
    assert.deepEqual((await call("GET", "/v1/limits")).json, { count: 3, limit: false });
    provisioner.limit = 10;
    assert.deepEqual((await call("GET", "/v1/limits")).json, { count: 3, limit: 10 });
  });

  test("exchange_openid gives a session token that acts for the vouched user only, until it expires", async () => {
    const refused = await call("POST", "/v1/exchange_openid", { matrixServer: "example.org", openIdToken: "bad-token" }, null);
    assert.equal(refused.status, 401);
    assert.equal(refused.json.errcode, "M_AS_BAD_OPENID");
    assert.equal((await call("POST", "/v1/exchange_openid", { matrixServer: "example.org" }, null)).json.errcode, "M_BAD_JSON");

    const exchanged = await call("POST", "/v1/exchange_openid", { matrixServer: "example.org", openIdToken: "good-token" }, null);
    assert.equal(exchanged.status, 200);
    assert.equal(exchanged.json.userId, "@widget:example.org");
    const token = String(exchanged.json.token);
    assert.ok(token.length > 40);

    const { user_id: _ignored, ...withoutUser } = link;
    assert.equal((await call("POST", "/v1/link", withoutUser, token)).status, 200);
    assert.equal(provisioner.linkCalls.at(-1)?.userId, "@widget:example.org");
    // A session cannot act for someone else by naming them.
    const other = await call("POST", "/v1/link", { ...link, user_id: "@mod:example.org" }, token);
    assert.equal(other.status, 403);
    assert.equal(provisioner.linkCalls.length, 1);
    // The same user named explicitly is fine.
    assert.equal((await call("POST", "/v1/link", { ...link, user_id: "@widget:example.org" }, token)).status, 200);

    now += 24 * 60 * 60_000 + 1;
    const expired = await call("GET", "/v1/querynetworks", undefined, token);
    assert.equal(expired.status, 401);
    assert.equal(expired.json.errcode, "M_AS_BAD_TOKEN");
  });

  test("rate limit per user: 429 M_AS_LIMIT_EXCEEDED with retry_after_ms, other users unaffected", async () => {
    await strictLimits();
    const as = (user: string) => call("POST", "/v1/querylink", { remote_room_server: "irc.libera.chat", remote_room_channel: "#chan", user_id: user });
    for (let i = 0; i < 5; i++) assert.equal((await as("@busy:example.org")).status, 200);
    const limited = await as("@busy:example.org");
    assert.equal(limited.status, 429);
    assert.equal(limited.json.errcode, "M_AS_LIMIT_EXCEEDED");
    assert.ok(Number(limited.json.retry_after_ms) > 0 && Number(limited.json.retry_after_ms) <= 10_000, String(limited.json.retry_after_ms));
    assert.equal(limited.headers.get("retry-after"), String(Math.ceil(Number(limited.json.retry_after_ms) / 1000)));
    assert.equal((await as("@calm:example.org")).status, 200);
    now += 10_000; // perMinute 6: one token back every 10 s
    assert.equal((await as("@busy:example.org")).status, 200);
  });

  test("refused tokens and OpenID exchanges are limited per address", async () => {
    await strictLimits();
    let last: Answer | null = null;
    for (let i = 0; i < 6; i++) last = await call("GET", "/v1/limits", undefined, "guess");
    assert.equal(last?.status, 429);
    assert.equal((await call("POST", "/v1/exchange_openid", { matrixServer: "example.org", openIdToken: "good-token" }, null)).status, 429);
    // The secret still works from there: a user's bucket is not the address's.
    assert.equal((await call("GET", "/v1/limits")).status, 200);
  });

  test("bodies: over maxBodyBytes 413, not JSON 400 M_NOT_JSON, the secret's user_id checked", async () => {
    const big = await call("POST", "/v1/link", { ...link, padding: "x".repeat(4096) });
    assert.equal(big.status, 413);
    assert.equal(big.json.errcode, "M_TOO_LARGE");
    const notJson = await call("POST", "/v1/link", undefined, SECRET, "{'a': 1}");
    assert.equal(notJson.status, 400);
    assert.equal(notJson.json.errcode, "M_NOT_JSON");
    const badUser = await call("POST", "/v1/querylink", { remote_room_server: "irc.libera.chat", remote_room_channel: "#chan", user_id: 42 });
    assert.equal(badUser.status, 400);
    assert.equal(badUser.json.errcode, "M_BAD_JSON");
  });

  test("CORS: preflights answered without auth, headers on every answer; wrong methods 405", async () => {
    const pre = await fetch(`${base}/_matrix/provision/v1/link`, { method: "OPTIONS", headers: { Origin: "https://widget.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type" } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get("access-control-allow-origin"), "*");
    assert.match(pre.headers.get("access-control-allow-headers") ?? "", /Authorization/);
    assert.match(pre.headers.get("access-control-allow-methods") ?? "", /POST/);
    const denied = await call("GET", "/v1/limits", undefined, "nope");
    assert.equal(denied.headers.get("access-control-allow-origin"), "*");
    const wrong = await call("GET", "/v1/link");
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get("allow"), "POST");
  });

  test("with a port of its own it listens there and leaves the appservice app alone", async () => {
    const app = express();
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const p = (probe.address() as AddressInfo).port;
        probe.close(() => resolve(p));
      });
    });
    const own = new ProvisioningApi(httpConfig({ port, pathPrefix: "/prov" }), provisioner, store, app, { secret: SECRET });
    assert.equal(app._router, undefined, "nothing mounted on the appservice app");
    await own.start();
    try {
      const res = await fetch(`http://127.0.0.1:${port}/prov/v1/limits`, { headers: { Authorization: `Bearer ${SECRET}` } });
      assert.deepEqual(await res.json(), { count: 3, limit: false });
      const unknown = await fetch(`http://127.0.0.1:${port}/prov/v2/limits`, { headers: { Authorization: `Bearer ${SECRET}` } });
      assert.equal(unknown.status, 404);
      assert.equal(((await unknown.json()) as { errcode: string }).errcode, "M_UNRECOGNIZED");
    } finally {
      await own.stop();
    }
  });
});

describe("provisioning config and secret", () => {
  test("enabled without a secretFile is an error naming the key", () => {
    assert.throws(
      () => parseConfig({ homeserver: { url: "http://x", domain: "x" }, networks: { n: { name: "n", address: "a", botNick: "b", ghostUserTemplate: "$NICK", aliasTemplate: "$CHANNEL" } }, provisioning: { http: { enabled: true } } }),
      /provisioning\.http\.secretFile: is required/,
    );
    assert.throws(
      () => parseConfig({ homeserver: { url: "http://x", domain: "x" }, networks: { n: { name: "n", address: "a", botNick: "b", ghostUserTemplate: "$NICK", aliasTemplate: "$CHANNEL" } }, provisioning: { http: { pathPrefix: "/_matrix/app/v1" } } }),
      /provisioning\.http\.pathPrefix/,
    );
  });

  test("the secret file must be private and long enough", () => {
    const dir = mkdtempSync(join(tmpdir(), "prov-secret-"));
    try {
      const file = join(dir, "secret");
      writeFileSync(file, `${SECRET}\n`);
      chmodSync(file, 0o644);
      assert.throws(() => readSecretFile(file), /provisioning\.http\.secretFile: .* readable or writable by others/);
      chmodSync(file, 0o600);
      assert.equal(readSecretFile(file), SECRET);
      writeFileSync(file, "short");
      assert.throws(() => readSecretFile(file), /at least 32 characters/);
      assert.throws(() => readSecretFile(join(dir, "missing")), /provisioning\.http\.secretFile: cannot read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("OpenID verification", () => {
  let hs: Server;
  let hsUrl: string;
  before(async () => {
    hs = createServer((req, res) => {
      const token = new URL(req.url ?? "/", "http://x").searchParams.get("access_token");
      res.setHeader("Content-Type", "application/json");
      if (token === "slow") return void setTimeout(() => res.end(JSON.stringify({ sub: "@alice:hs.example" })), 1_500);
      if (token === "good") res.end(JSON.stringify({ sub: "@alice:hs.example" }));
      else if (token === "foreign") res.end(JSON.stringify({ sub: "@mallory:evil.example" }));
      else {
        res.statusCode = 401;
        res.end(JSON.stringify({ errcode: "M_UNKNOWN_TOKEN" }));
      }
    });
    await new Promise<void>((r) => hs.listen(0, "127.0.0.1", r));
    hsUrl = `http://127.0.0.1:${(hs.address() as AddressInfo).port}`;
  });
  after(() => hs.close());

  test("private, loopback and link-local addresses are recognised", () => {
    for (const a of ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "0.0.0.0", "not-an-ip"]) assert.ok(isPrivateAddress(a), a);
    for (const a of ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "::ffff:8.8.8.8"]) assert.ok(!isPrivateAddress(a), a);
  });

  test("a mapped server is asked; the user must belong to it", async () => {
    const verifier = new OpenIdVerifier({ serverUrls: { "hs.example": hsUrl, "evil.example": hsUrl }, allowPrivateAddresses: false, timeoutMs: 5_000 });
    assert.equal(await verifier.userOf("hs.example", "good"), "@alice:hs.example");
    await assert.rejects(verifier.userOf("hs.example", "bad"), (err: Error) => err instanceof OpenIdError && /401/.test(err.message));
    await assert.rejects(verifier.userOf("hs.example", "foreign"), /another server/);
    await assert.rejects(verifier.userOf("hs example", "good"), /not a server name/);
  });

  test("few exchanges at once (each resolves names of the caller's choosing), and one deadline for each", async () => {
    const verifier = new OpenIdVerifier({ serverUrls: { "hs.example": hsUrl }, allowPrivateAddresses: false, timeoutMs: 400 });
    const started = [verifier.userOf("hs.example", "slow"), verifier.userOf("hs.example", "slow")];
    await assert.rejects(verifier.userOf("hs.example", "good"), /too many/);
    for (const s of started) await assert.rejects(s, /took too long|did not answer in time/);
    assert.equal(await verifier.userOf("hs.example", "good"), "@alice:hs.example");
  });

  test("a discovered server on a private address is refused unless allowed", async () => {
    const port = new URL(hsUrl).port;
    const strict = new OpenIdVerifier({ serverUrls: {}, allowPrivateAddresses: false, timeoutMs: 5_000 });
    await assert.rejects(strict.userOf(`127.0.0.1:${port}`, "good"), (err: Error) => err instanceof OpenIdError && /private/.test(err.message));
    await assert.rejects(strict.userOf("localhost", "good"), (err: Error) => err instanceof OpenIdError && /private/.test(err.message));
  });
});
