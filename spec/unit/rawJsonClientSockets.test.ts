/**
 * RawJsonClient against a server scripted byte for byte: how answers split across reads are
 * put together, which framings are refused (a Reframe), and which sockets are reused or dropped.
 */
import assert from "node:assert/strict";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { after, before, beforeEach, describe, test } from "node:test";
import { RawJsonClient, Reframe, type RawAnswer } from "../../src/matrix/RawJsonClient.js";
import { waitFor } from "../harness/wait.js";

/** Answers as Synapse does: a realistic head, the JSON in one chunk. */
const SYNAPSE_HEAD =
  "HTTP/1.1 200 OK\r\nDate: Tue, 24 Nov 2026 13:00:00 GMT\r\nServer: Synapse/1.163.0\r\nContent-Type: application/json\r\n" +
  "Cache-Control: no-cache, no-store, must-revalidate\r\nAccess-Control-Allow-Origin: *\r\nAccess-Control-Allow-Methods: GET, HEAD, POST, PUT, DELETE, OPTIONS\r\n" +
  "Access-Control-Allow-Headers: X-Requested-With, Content-Type, Authorization, Date\r\nX-Content-Type-Options: nosniff\r\nTransfer-Encoding: chunked\r\n\r\n";
const chunked = (json: string) => `${SYNAPSE_HEAD}${Buffer.byteLength(json).toString(16)}\r\n${json}\r\n0\r\n\r\n`;
const withLength = (head: string, body: string) => `HTTP/1.1 200 OK\r\n${head}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe("the raw client's sockets and framing, against a scripted server", () => {
  let server: Server;
  let port = 0;
  const accepted: Socket[] = [];
  /** What the server does with each request: (socket, request number on that socket). */
  let script: (socket: Socket, n: number) => void | Promise<void> = () => undefined;

  before(async () => {
    server = createServer((socket) => {
      accepted.push(socket);
      let n = 0;
      socket.on("data", () => void script(socket, n++));
      socket.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    for (const socket of accepted) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  let client: RawJsonClient;
  beforeEach(() => {
    client = new RawJsonClient("127.0.0.1", port);
    for (const socket of accepted.splice(0)) socket.destroy();
  });

  const call = (path = "/send/t") =>
    new Promise<{ err: Error | null; answer?: RawAnswer }>((resolve) => client.request("PUT", path, "Content-Type: application/json\r\n", Buffer.from("{}"), (err, answer) => resolve({ err, answer })));
  const reframed = async (answer: string) => {
    script = (socket) => void socket.write(Buffer.from(answer, "latin1"));
    const { err } = await call();
    assert.ok(err instanceof Reframe, `a Reframe, not ${err}`);
    return err.message;
  };

  test("a Synapse answer arriving byte by byte is read, with its headers as a record, and the socket reused", async () => {
    script = async (socket, n) => {
      for (const byte of Buffer.from(chunked(`{"event_id":"$byte${n}"}`))) {
        socket.write(Buffer.of(byte));
        await nextTurn();
      }
    };
    for (const n of [0, 1]) {
      const { err, answer } = await call();
      assert.equal(err, null);
      assert.equal(answer?.status, 200);
      assert.equal(answer?.body, `{"event_id":"$byte${n}"}`);
      assert.equal(answer?.headers["content-type"], "application/json");
      assert.equal(answer?.headers["cache-control"], "no-cache, no-store, must-revalidate");
      assert.equal(answer?.headers["transfer-encoding"], "chunked");
      assert.equal(Object.keys(answer?.headers ?? {}).length, 9);
    }
    assert.equal(accepted.length, 1, "both calls on one socket");
  });

  test("an answer in two reads keeps its first read's bytes (later reads do not overwrite them), on a reused socket too", async () => {
    const bodies = ["A", "B", "C"].map((c) => `{"event_id":"$${c.repeat(300)}"}`);
    script = async (socket, n) => {
      const bytes = Buffer.from(withLength("Content-Type: application/json\r\n", bodies[n]));
      // Split early in the body: the second read, longer than the first, lands over the first one's bytes if they were not kept.
      socket.write(bytes.subarray(0, bytes.length - 250));
      await nextTurn(); // the client reads the first part (the poll phase comes before this turn's end)
      await nextTurn();
      socket.write(bytes.subarray(bytes.length - 250));
    };
    for (const body of bodies) {
      const { err, answer } = await call();
      assert.equal(err, null);
      assert.equal(answer?.body, body);
    }
    // Chunked: a whole chunk in the first read, a longer second read.
    script = async (socket, n) => {
      socket.write(`${SYNAPSE_HEAD}64\r\n{"event_id":"$${String(n).repeat(86)}\r\n`);
      await nextTurn();
      await nextTurn();
      socket.write(`258\r\n${"x".repeat(598)}"}\r\n0\r\n\r\n`);
    };
    for (const n of [3, 4]) { // the socket's fourth and fifth requests
      const { err, answer } = await call();
      assert.equal(err, null);
      assert.equal(answer?.body, `{"event_id":"$${String(n).repeat(86)}${"x".repeat(598)}"}`);
    }
    assert.equal(accepted.length, 1);
  });

  test("Connection: close, and bytes past the answer, leave the socket out of the pool; the next call opens a new one", async () => {
    script = (socket) => void socket.write(withLength("Connection: close\r\n", "{}"));
    assert.equal((await call()).answer?.body, "{}");
    script = (socket) => void socket.write(withLength("", "{}") + "HTTP/1.1 200 OK\r\n");
    assert.equal((await call()).answer?.body, "{}");
    script = (socket) => void socket.write(withLength("", '{"n":3}'));
    assert.equal((await call()).answer?.body, '{"n":3}');
    assert.equal(accepted.length, 3);
    assert.equal((await call()).answer?.body, '{"n":3}');
    assert.equal(accepted.length, 3, "the third socket was kept");
  });

  test("an idle socket that gets unasked bytes, or is closed by the server, is dropped: the next call opens a new socket and succeeds", async () => {
    script = (socket) => void socket.write(withLength("", "{}"));
    assert.equal((await call()).err, null);
    accepted[0].write("HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n");
    await waitFor("the idle socket dropped", () => accepted[0].destroyed || accepted[0].readableEnded, 5_000, 5);
    assert.equal((await call()).answer?.body, "{}");
    assert.equal(accepted.length, 2);
    accepted[1].end();
    await waitFor("the idle socket closed", () => accepted[1].closed, 5_000, 5);
    await nextTurn();
    assert.equal((await call()).answer?.body, "{}");
    assert.equal(accepted.length, 3);
  });

  test("a close or a reset before the whole answer is a Reframe that leaves the client usable", async () => {
    script = (socket) => void socket.end("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}");
    assert.match((await call()).err?.message ?? "", /closed before the whole answer/);
    script = (socket) => void socket.resetAndDestroy();
    assert.ok((await call()).err instanceof Reframe);
    assert.equal(client.usable, true);
    script = (socket) => void socket.write(withLength("", "{}"));
    assert.equal((await call()).answer?.body, "{}");
  });

  test("a malformed header line, two Content-Lengths, Content-Length with chunking: Reframe, and the client is off", async () => {
    for (const [answer, reason] of [
      ["HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 2\r\n\r\n{}", "header line"],
      ["HTTP/1.1 200 OK\r\nX-A x\r\nContent-Length: 2\r\n\r\n{}", "header line"],
      ["HTTP/1.1 200 OK\r\n: x\r\nContent-Length: 2\r\n\r\n{}", "header line"],
      ["HTTP/1.1 200 OK\r\nX-A: a\r\n folded\r\nContent-Length: 2\r\n\r\n{}", "header line"],
      ["HTTP/1.1 200 OK\r\nX-A: a\nContent-Length: 2\r\n\r\n{}", "header line"],
      ["HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\n{}", "header line"],
      ["HTTP/1.1 200 OK\r\nX-\u00e9: a\r\nContent-Length: 2\r\n\r\n{}", "header line"],
      ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", "content-length"],
      ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", "transfer-encoding"],
      ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n", "content-length"],
      ["HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", "transfer-encoding"],
      ["HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n{}", "content-length"],
      ["HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}", "content-length"],
      ["HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", "status line"],
      ["HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\n{}", "status line"],
    ]) {
      client = new RawJsonClient("127.0.0.1", port);
      assert.equal(await reframed(answer), `raw HTTP answer not read: ${reason}`, answer);
      assert.equal(client.usable, false, answer);
    }
  });

  test("header values are read as before: trimmed, names lowercased, repeated names joined, case-insensitive framing names and values", async () => {
    script = (socket) =>
      void socket.write("HTTP/1.1 429 Too Many Requests\r\nRetry-After:  7 \t\r\nX-Dup: a\r\nx-dup: b\r\nCONTENT-length: 2\r\nConnection: Keep-Alive\r\nEmpty:\r\n\r\n{}");
    const { err, answer } = await call();
    assert.equal(err, null);
    assert.deepEqual(answer, { status: 429, headers: { "retry-after": "7", "x-dup": "a, b", "content-length": "2", connection: "Keep-Alive", empty: "" }, body: "{}" });
    script = (socket) => void socket.write("HTTP/1.1 200\r\ntransfer-encoding: CHUNKED\r\nconnection: CLOSE\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
    assert.equal((await call()).answer?.body, "{}");
    assert.equal((await call()).answer?.body, "{}");
    assert.equal(accepted.length, 2, "the first two calls on one socket: CONNECTION: close was seen, and the third opened another");
  });
});
