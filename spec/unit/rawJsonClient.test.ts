import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createNetServer, type AddressInfo, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { jsonRequest, jsonTarget } from "../../src/matrix/leanRequest.js";
import { ChunkedBody } from "../../src/matrix/RawJsonClient.js";

describe("the hot path's JSON calls (raw client first, Node's client for what it does not read)", () => {
  let server: Server;
  let url: string;
  let connections = 0;
  const seen: string[] = [];
  /** As Synapse answers: JSON with a Content-Length. */
  const json = (res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}) =>
    res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text), ...headers }).end(text);
  let answer: (req: IncomingMessage, res: ServerResponse, body: string) => void = (_req, res) => json(res, 200, '{"event_id":"$e"}');

  before(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        seen.push(`${req.method} ${req.url} ${req.headers.authorization} ${body}`);
        answer(req, res, body);
      });
    });
    server.on("connection", () => connections++);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const call = (path: string, body: string, timeoutMs = 5_000) =>
    new Promise<{ err: Error | null; status: number; text: string }>((resolve) => jsonRequest(jsonTarget(url, "tok"), "PUT", path, body, timeoutMs, (err, status, _h, text) => resolve({ err, status, text })));

  test("calls go out on one kept-alive connection, with the token, path and body as given", async () => {
    seen.length = 0;
    const before = connections;
    for (let i = 0; i < 5; i++) {
      const { err, status, text } = await call(`/_matrix/client/v3/rooms/!r%3Ahs/send/m.room.message/t${i}?user_id=%40irc_bob%3Ahs`, `{"n":${i}}`);
      assert.equal(err, null);
      assert.equal(status, 200);
      assert.equal(text, '{"event_id":"$e"}');
    }
    assert.equal(connections - before, 1, "one connection for five calls");
    assert.equal(seen[4], 'PUT /_matrix/client/v3/rooms/!r%3Ahs/send/m.room.message/t4?user_id=%40irc_bob%3Ahs Bearer tok {"n":4}');
  });

  test("errors keep their status and body; a connection the server closed is not reused", async () => {
    answer = (_req, res) => json(res, 403, '{"errcode":"M_FORBIDDEN","error":"no"}', { Connection: "close" });
    const refused = await call("/send/e1", "{}");
    assert.equal(refused.status, 403);
    assert.equal(refused.text, '{"errcode":"M_FORBIDDEN","error":"no"}');
    answer = (_req, res) => json(res, 200, '{"event_id":"$after"}');
    const next = await call("/send/e2", "{}");
    assert.equal(next.err, null);
    assert.equal(next.text, '{"event_id":"$after"}');
  });

  test("a call that gets no answer in time fails with ETIMEDOUT", async () => {
    answer = () => undefined; // never answers
    const { err } = await call("/send/slow", "{}", 300);
    assert.equal((err as Error & { code?: string })?.code, "ETIMEDOUT");
    answer = (_req, res) => json(res, 200, '{"event_id":"$e"}');
  });
  test("a chunked answer (as Synapse sends a send's answer) is read on the same connection, the call sent once", async () => {
    seen.length = 0;
    const before = connections;
    answer = (_req, res) => {
      res.writeHead(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
      res.write('{"event_id":');
      res.end('"$chunked"}');
    };
    for (const id of ["c1", "c2"]) {
      const { err, status, text } = await call(`/send/${id}`, "{}");
      assert.equal(err, null);
      assert.equal(status, 200);
      assert.equal(text, '{"event_id":"$chunked"}');
    }
    assert.equal(seen.length, 2, "each call sent once");
    assert.ok(connections - before <= 1, "both calls on one kept-alive connection");
  });

  test("chunk extensions, trailers, a character split between chunks and an answer arriving byte by byte are read", async () => {
    const answers = ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\n{\"a\":\r\n2\r\n\"\xc3\r\n3 \r\n\xa9\"}\r\n0\r\nX-Trailer: t\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"];
    const bytesServer = createNetServer((socket) => {
      let requests = 0;
      socket.on("data", async () => {
        const bytes = Buffer.from(answers[requests++ % answers.length], "latin1");
        for (const byte of bytes) {
          socket.write(Buffer.of(byte));
          await new Promise((resolve) => setImmediate(resolve));
        }
      });
    });
    const accepted: Socket[] = [];
    bytesServer.on("connection", (socket) => accepted.push(socket));
    await new Promise<void>((resolve) => bytesServer.listen(0, "127.0.0.1", resolve));
    const target = jsonTarget(`http://127.0.0.1:${(bytesServer.address() as AddressInfo).port}`, "tok");
    const rawCall = () => new Promise<{ err: Error | null; text: string }>((resolve) => jsonRequest(target, "PUT", "/send/b", "{}", 5_000, (err, _s, _h, text) => resolve({ err, text })));
    try {
      assert.deepEqual(await rawCall(), { err: null, text: '{"a":"\u00e9"}' });
      assert.deepEqual(await rawCall(), { err: null, text: "{}" }, "the connection is in step for the next answer");
      assert.equal(accepted.length, 1);
    } finally {
      for (const socket of accepted) socket.destroy();
      await new Promise((resolve) => bytesServer.close(resolve));
    }
  });

  test("(last: it turns the raw client off for this server) an answer it does not read (no length, read to the close) is asked again through Node's client, and read", async () => {
    seen.length = 0;
    answer = (_req, res) => {
      res.useChunkedEncodingByDefault = false; // no Content-Length, no chunks: the body ends at the close
      res.writeHead(200, { "Content-Type": "application/json" });
      res.write('{"event_id":');
      res.end('"$unframed"}');
    };
    const { err, status, text } = await call("/send/u1", "{}");
    assert.equal(err, null);
    assert.equal(status, 200);
    assert.equal(text, '{"event_id":"$unframed"}');
    assert.equal(seen.length, 2, "sent twice: raw, then Node's client (the same transaction ID makes that safe)");
    // From then on, Node's client makes every call (once each).
    const again = await call("/send/u2", "{}");
    assert.equal(again.text, '{"event_id":"$unframed"}');
    assert.equal(seen.length, 3);
  });
});

describe("reading a chunked body", () => {
  const read = (text: string, start = 0) => new ChunkedBody(start).read(Buffer.from(text, "latin1"));

  test("read at once or a byte at a time, it is the same body and end", () => {
    const answer = "5;a=b\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-T: 1\r\n\r\nNEXT";
    assert.deepEqual(read(answer), { body: Buffer.from("hello world"), end: answer.length - 4 });
    const reader = new ChunkedBody(0);
    let result: ReturnType<ChunkedBody["read"]> = null;
    for (let n = 1; n <= answer.length && result === null; n++) result = reader.read(Buffer.from(answer.slice(0, n), "latin1"));
    assert.deepEqual(result, { body: Buffer.from("hello world"), end: answer.length - 4 });
  });

  test("malformed framing is named at once, not waited on: bare LF, long lines, big trailers, bad sizes and ends", () => {
    assert.equal(read("0\r\n\n"), "bare LF");
    assert.equal(read("5\nhello\r\n0\r\n\r\n"), "bare LF");
    assert.equal(read(`1;${"x".repeat(5000)}\r\nA\r\n0\r\n\r\n`), "chunk size line", "a long extension, even complete");
    assert.equal(read(`1;${"x".repeat(5000)}`), "chunk size line", "a long extension, still coming");
    assert.equal(read(`0\r\n${"X-T: 1\r\n".repeat(10_000)}`), "trailers too large");
    assert.equal(read("fffffffff\r\n"), "chunk size line", "nine hex digits");
    assert.equal(read("ffffffff\r\n"), "chunked body too large");
    assert.equal(read("-1\r\n"), "chunk size line");
    assert.equal(read("2\r\nabc\r\n"), "chunk end");
    assert.equal(read("5\r\nhel"), null, "more to come");
  });
});
