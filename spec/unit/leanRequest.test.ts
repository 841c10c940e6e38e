import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { leanRequest, redirected, urlWithQuery, type LeanResponse, type RequestParams } from "../../src/matrix/leanRequest.js";

function call(params: RequestParams): Promise<{ err: Error | null; res?: LeanResponse; body?: string | Buffer }> {
  return new Promise((resolve) => leanRequest(params, (err, res, body) => resolve({ err, res, body })));
}

describe("the SDK's HTTP calls without the request library", () => {
  let server: Server;
  let base: string;
  const sockets = new Set<unknown>();

  before(async () => {
    server = createServer((req, res) => {
      sockets.add(req.socket);
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        if (req.url === "/moved") return void res.writeHead(302, { location: "/echo?from=redirect" }).end();
        if (req.url === "/slow") return void setTimeout(() => res.end("late"), 2_000);
        if (req.url === "/trickle") {
          res.writeHead(200);
          const timer = setInterval(() => res.write("x"), 100);
          return void res.on("close", () => clearInterval(timer));
        }
        res.writeHead(req.url === "/missing" ? 404 : 200, { "content-type": "application/json" });
        res.end(JSON.stringify({ method: req.method, url: req.url, type: req.headers["content-type"], auth: req.headers.authorization, body: Buffer.concat(chunks).toString("base64") }));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => {
    server.closeAllConnections();
    server.close();
  });

  test("query strings as the SDK asks: arrays repeat, null is empty, undefined is left out", () => {
    assert.equal(urlWithQuery("http://h/p?x=1", { a: ["1", "2"], b: null, c: undefined, d: 3, e: "é&" }).search, "?x=1&a=1&a=2&b=&d=3&e=%C3%A9%26");
  });

  test("a PUT with a JSON body and headers; the answer as a string, and the status of a 404", async () => {
    const { err, res, body } = await call({ uri: `${base}/echo`, method: "PUT", qs: { user_id: "@a:x" }, headers: { Authorization: "Bearer t", "Content-Type": "application/json" }, body: '{"k":"v"}' });
    assert.equal(err, null);
    assert.equal(res!.statusCode, 200);
    const seen = JSON.parse(body as string);
    assert.deepEqual([seen.method, seen.url, seen.type, seen.auth, Buffer.from(seen.body, "base64").toString()], ["PUT", "/echo?user_id=%40a%3Ax", "application/json", "Bearer t", '{"k":"v"}']);
    assert.equal((await call({ uri: `${base}/missing` })).res!.statusCode, 404);
  });

  test("a Buffer body goes as bytes; encoding null answers a Buffer", async () => {
    const bytes = Buffer.from([0, 255, 1, 254]);
    const { res } = await call({ uri: `${base}/upload`, method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: bytes, encoding: null });
    assert.ok(Buffer.isBuffer(res!.body));
    assert.deepEqual(Buffer.from(JSON.parse(res!.body.toString()).body, "base64"), bytes);
  });

  test("GET follows a redirect; a call over its timeout fails with ETIMEDOUT", async () => {
    const { body } = await call({ uri: `${base}/moved` });
    assert.equal(JSON.parse(body as string).url, "/echo?from=redirect");
    const slow = await call({ uri: `${base}/slow`, timeout: 200 });
    assert.equal((slow.err as Error & { code?: string }).code, "ETIMEDOUT");
  });

  test("the timeout bounds the whole call: a body trickling in fails with ETIMEDOUT", async () => {
    const started = Date.now();
    const { err } = await call({ uri: `${base}/trickle`, timeout: 500 });
    assert.equal((err as Error & { code?: string }).code, "ETIMEDOUT");
    assert.ok(Date.now() - started < 1_500);
  });

  test("redirects keep the token on the same host only, and never go from https to http", () => {
    const params = { uri: "https://hs.example/_matrix/x", headers: { Authorization: "Bearer AS", "Content-Type": "application/json" } };
    const same = redirected(params, new URL(params.uri), "/elsewhere");
    assert.equal((same as { headers: Record<string, string> }).headers.Authorization, "Bearer AS");
    const other = redirected(params, new URL(params.uri), "https://evil.example/steal");
    assert.deepEqual((other as { headers: Record<string, string> }).headers, { "Content-Type": "application/json" });
    assert.ok(redirected(params, new URL(params.uri), "http://hs.example/plain") instanceof Error);
  });

  test("connections are kept alive: many calls, few sockets", async () => {
    sockets.clear();
    for (let i = 0; i < 20; i++) await call({ uri: `${base}/echo` });
    assert.ok(sockets.size <= 2, `${sockets.size} sockets for 20 sequential calls`);
  });
});
