/**
 * The media link server's streaming against a homeserver stand-in on loopback (what Synapse
 * cannot be made to do on demand: stall, send without end, hang before answering): a client
 * that goes away aborts the download from the homeserver; the size cap and the timeouts cut
 * it; a forged link never reaches the homeserver. Synapse itself is in media.test.ts.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { after, before, describe, test } from "node:test";
import { configSchema } from "../../src/config/schema.js";
import { MediaServer } from "../../src/http/MediaServer.js";
import { MediaSigner } from "../../src/http/mediaToken.js";
import { metrics } from "../../src/metrics/metrics.js";
import { freePort } from "../harness/ports.js";
import { waitFor } from "../harness/wait.js";

type Behaviour = (req: IncomingMessage, res: ServerResponse) => void;

describe("media link streaming", { timeout: 60_000 }, () => {
  let upstream: Server;
  let media: MediaServer;
  let signer: MediaSigner;
  let base = "";
  const seen: { path: string; auth: string | undefined; closedEarly: boolean }[] = [];
  const behaviours = new Map<string, Behaviour>();
  const redacted = new Set<string>();

  const link = (mediaId: string, eventId = `$${mediaId}`) => signer.link({ mxc: `mxc://hs.test/${mediaId}`, eventId, roomId: "!r:hs.test", filename: `${mediaId}.bin` });
  const outcome = async (name: string) => ((await metrics.mediaRequests.get()).values.find((v) => v.labels.outcome === name)?.value ?? 0);

  before(async () => {
    upstream = createServer((req, res) => {
      const entry = { path: req.url ?? "", auth: req.headers.authorization, closedEarly: false };
      seen.push(entry);
      res.on("close", () => (entry.closedEarly = !res.writableFinished));
      const id = (req.url ?? "").split("/").pop()!;
      (behaviours.get(id) ?? ((_q, r) => r.writeHead(404).end()))(req, res);
    });
    const upstreamPort = await freePort();
    await new Promise<void>((r) => upstream.listen(upstreamPort, "127.0.0.1", r));
    const port = await freePort();
    const config = configSchema.parse({
      homeserver: { url: `http://127.0.0.1:${upstreamPort}`, domain: "hs.test" },
      media: { publicUrl: `http://127.0.0.1:${port}/m/`, port, maxBytes: 1_000_000, connectTimeoutMs: 1_000, idleTimeoutMs: 1_000, maxPerClient: 3, minBytesPerSecond: 2_000 },
      networks: { net: { name: "Net", address: "127.0.0.1", botNick: "bot", ghostUserTemplate: "irc_net_$NICK", aliasTemplate: "irc_net_$CHANNEL" } },
    });
    signer = new MediaSigner(Buffer.alloc(32, 3), config.media.publicUrl!);
    media = new MediaServer(config.media, { signer, isRedacted: (e) => redacted.has(e), homeserverUrl: config.homeserver.url, asToken: "as-secret" });
    await media.listen(port, "127.0.0.1");
    base = `http://127.0.0.1:${port}`;
  });

  after(async () => {
    await media?.close();
    upstream?.closeAllConnections();
    await new Promise((r) => upstream?.close(r));
  });

  test("a file streams through with the appservice token on the authenticated media API", async () => {
    behaviours.set("small", (_q, r) => r.writeHead(200, { "Content-Type": "image/gif", "Content-Length": "5" }).end("GIF89"));
    const res = await fetch(link("small"));
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "GIF89");
    const call = seen.at(-1)!;
    assert.equal(call.path, "/_matrix/client/v1/media/download/hs.test/small");
    assert.equal(call.auth, "Bearer as-secret");
  });

  test("a client that goes away aborts the download from the homeserver", async () => {
    // Sends for ever, a little at a time, until its client (the bridge) hangs up.
    behaviours.set("endless", (_q, r) => {
      r.writeHead(200, { "Content-Type": "video/mp4" });
      const timer = setInterval(() => r.write(Buffer.alloc(1024)), 20);
      r.on("close", () => clearInterval(timer));
    });
    const before = await outcome("aborted");
    const controller = new AbortController();
    const res = await fetch(link("endless"), { signal: controller.signal });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    await waitFor("the homeserver's download to be closed", () => seen.find((s) => s.path.endsWith("/endless"))?.closedEarly, 10_000);
    await waitFor("the aborted outcome", async () => (await outcome("aborted")) > before, 10_000);
  });

  test("the size cap: a declared length over it is 413; a body running over it is cut", async () => {
    behaviours.set("huge", (_q, r) => r.writeHead(200, { "Content-Length": "2000000" }).end());
    const huge = await fetch(link("huge"));
    assert.equal(huge.status, 413);
    behaviours.set("liar", (_q, r) => {
      r.writeHead(200, { "Content-Type": "application/zip" }); // chunked: no length to check first
      const timer = setInterval(() => r.write(Buffer.alloc(64 * 1024)), 5);
      r.on("close", () => clearInterval(timer));
    });
    const res = await fetch(link("liar"));
    assert.equal(res.status, 200);
    await assert.rejects(res.arrayBuffer());
    await waitFor("the homeserver's download to be closed", () => seen.find((s) => s.path.endsWith("/liar"))?.closedEarly, 10_000);
    assert.ok((await outcome("too_large")) >= 2);
  });

  test("timeouts: no answer → 504; a stall mid-file cuts the connection", async () => {
    behaviours.set("silent", () => undefined);
    const started = Date.now();
    assert.equal((await fetch(link("silent"))).status, 504);
    assert.ok(Date.now() - started < 5_000);
    behaviours.set("stall", (_q, r) => {
      r.writeHead(200, { "Content-Length": "100" });
      r.write("half");
    });
    const res = await fetch(link("stall"));
    assert.equal(res.status, 200);
    await assert.rejects(res.text());
    await waitFor("both timeouts counted", async () => (await outcome("timeout")) >= 2, 10_000);
  });

  test("forged, redacted and unknown links; HEAD; methods", async () => {
    const calls = seen.length;
    const good = link("small");
    const forged = good.replace(/\.([A-Za-z0-9_-])([A-Za-z0-9_-]{42})\//, (_m, c: string, rest: string) => `.${c === "A" ? "B" : "A"}${rest}/`);
    assert.notEqual(forged, good);
    assert.equal((await fetch(forged)).status, 404);
    redacted.add("$gone");
    assert.equal((await fetch(link("small", "$gone"))).status, 404);
    // An edit's link dies with the edit or with the event it edits.
    const editLink = (eventId: string, originalEventId: string) => signer.link({ mxc: "mxc://hs.test/small", eventId, roomId: "!r:hs.test", filename: "small.bin", originalEventId });
    assert.equal((await fetch(editLink("$edit", "$gone"))).status, 404);
    assert.equal((await fetch(editLink("$gone", "$kept"))).status, 404);
    assert.equal((await fetch(`${base}/m/nothing/here`)).status, 404);
    assert.equal((await fetch(good, { method: "POST" })).status, 405);
    assert.equal(seen.length, calls, "none of those reached the homeserver");
    const head = await fetch(good, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), "5");
    assert.equal(head.headers.get("content-disposition"), `inline; filename="small.bin"; filename*=UTF-8''small.bin`);
    assert.equal((await fetch(link("missing"))).status, 404);
  });

  test("a trickle (each chunk in time, but slow on average) is cut after the grace; a client holds at most maxPerClient slots", async () => {
    // 100 bytes every 200 ms: within idleTimeoutMs each time, 500 B/s on average (floor: 2000).
    behaviours.set("trickle", (_q, r) => {
      r.writeHead(200, { "Content-Type": "video/mp4" });
      const timer = setInterval(() => r.write(Buffer.alloc(100)), 200);
      r.on("close", () => clearInterval(timer));
    });
    const slow = await fetch(link("trickle"));
    assert.equal(slow.status, 200);
    await assert.rejects(slow.arrayBuffer(), "the slow download is cut");
    await waitFor("the homeserver's trickle to be closed", () => seen.find((s) => s.path.endsWith("/trickle"))?.closedEarly, 10_000);
    await waitFor("the too_slow outcome", async () => (await outcome("too_slow")) >= 1, 10_000);

    // Fast enough to stay (50 KiB/s), until its client leaves.
    behaviours.set("steady", (_q, r) => {
      r.writeHead(200, { "Content-Type": "video/mp4" });
      const timer = setInterval(() => r.write(Buffer.alloc(1024)), 20);
      r.on("close", () => clearInterval(timer));
    });
    const controllers = [0, 1, 2].map(() => new AbortController());
    const held = await Promise.all(controllers.map((c) => fetch(link("steady"), { signal: c.signal })));
    assert.deepEqual(held.map((r) => r.status), [200, 200, 200]);
    const fourth = await fetch(link("steady"));
    assert.equal(fourth.status, 503, "a fourth download from the same address waits");
    assert.equal(fourth.headers.get("retry-after"), "5");
    controllers[0].abort();
    await waitFor("a slot to free up", async () => {
      const again = await fetch(link("small"));
      await again.arrayBuffer();
      return again.status === 200;
    }, 10_000, 100);
    for (const c of controllers) c.abort();
  });
});
