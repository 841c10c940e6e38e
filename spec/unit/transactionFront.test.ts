import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { parsePlainHead, TransactionFront } from "../../src/matrix/TransactionFront.js";

const TOKEN = "hs-secret";
const tokenCheck = { tokenMatches: (t: string) => t === TOKEN };

function put(txnId: string, body: string, headers: Record<string, string> = {}): string {
  const all = { Host: "bridge", Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(body)), ...headers };
  const lines = Object.entries(all).map(([k, v]) => `${k}: ${v}`);
  return `PUT /_matrix/app/v1/transactions/${txnId} HTTP/1.1\r\n${lines.join("\r\n")}\r\n\r\n${body}`;
}

describe("which requests the transaction front serves itself", () => {
  const head = (raw: string) => parsePlainHead(raw.slice(0, raw.indexOf("\r\n\r\n")), tokenCheck, 1000);
  test("exactly what Synapse sends", () => {
    assert.deepEqual(head(put("42", "{}")), { txnId: "42", contentLength: 2, close: false });
    assert.deepEqual(head(put("x", "{}").replace("PUT /_matrix/app/v1/transactions/x", "POST /_matrix/app/v1/ping")), { txnId: null, contentLength: 2, close: false });
    assert.deepEqual(head(put("42", "{}", { "Content-Type": "application/json; charset=UTF-8", Connection: "close" })), { txnId: "42", contentLength: 2, close: true });
  });
  test("anything else is left to Node and express", () => {
    const odd: [string, string][] = [
      ["a wrong token", put("42", "{}", { Authorization: "Bearer nope" })],
      ["no token", put("42", "{}", { Authorization: "Basic x" })],
      ["chunked", put("42", "{}", { "Transfer-Encoding": "chunked" })],
      ["Expect", put("42", "{}", { Expect: "100-continue" })],
      ["another type", put("42", "{}", { "Content-Type": "text/plain" })],
      ["another charset", put("42", "{}", { "Content-Type": "application/json; charset=latin1" })],
      ["gzip", put("42", "{}", { "Content-Encoding": "gzip" })],
      ["too large", put("42", "x".repeat(1001))],
      ["a query", put("42?access_token=x", "{}")],
      ["an escape", put("4%2F2", "{}")],
      ["a dot segment", put("..", "{}")],
      ["a header with a control character", put("42", "{}", { "X-Odd": "a\u0001b" })],
      ["a header name with a space", put("42", "{}").replace("Host:", "Ho st:")],
      ["a folded header", put("42", "{}").replace("Host: bridge", "Host: bridge\r\n continued")],
      ["two lengths", put("42", "{}").replace("Host: bridge", "Host: bridge\r\nContent-Length: 2")],
      ["HTTP/1.0", put("42", "{}").replace("HTTP/1.1", "HTTP/1.0")],
      ["POST", put("42", "{}").replace("PUT", "POST")],
      ["GET ping", put("x", "{}").replace("PUT /_matrix/app/v1/transactions/x", "GET /_matrix/app/v1/ping")],
    ];
    for (const [label, raw] of odd) assert.equal(head(raw), null, label);
  });
});

describe("the transaction front on a real server", () => {
  let server: Server;
  let port: number;
  const served: string[] = [];
  const byNode: string[] = [];
  let hold = false;
  const held: (() => void)[] = [];
  let front: TransactionFront;

  before(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        byNode.push(`${req.method} ${req.url} ${body}`);
        res.writeHead(418, { "Content-Type": "application/json" }).end('{"errcode":"NODE"}');
      });
    });
    front = new TransactionFront(
      server,
      {
        ...tokenCheck,
        serve: (txnId, body, answer) => {
          served.push(`${txnId} ${JSON.stringify(body)}`);
          if (hold) held.push(() => answer.ok());
          else answer.ok();
        },
        ping: (body, answer) => {
          served.push(`ping ${JSON.stringify(body)}`);
          answer.ok();
        },
      },
      { maxHeaderBytes: 4096, maxBodyBytes: 1000, requestTimeoutMs: 500, idleTimeoutMs: 5_000 },
    );
    port = await listening(server);
  });
  after(() => closeFront(front, server));

  /** Writes the chunks (with a pause between), and resolves with all that came back once `done` says so or the socket closes. */
  function exchange(chunks: string[], done: (text: string) => boolean): Promise<{ text: string; closed: boolean }> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, "127.0.0.1");
      let text = "";
      let closed = false;
      const finish = () => {
        socket.destroy();
        resolve({ text, closed });
      };
      socket.on("data", (d) => {
        text += d.toString();
        if (done(text)) finish();
      });
      socket.on("close", () => {
        closed = true;
        finish();
      });
      socket.on("error", reject);
      void (async () => {
        for (const chunk of chunks) {
          socket.write(chunk);
          await new Promise((r) => setTimeout(r, 30));
        }
      })();
    });
  }
  const count = (text: string, what: string) => text.split(what).length - 1;

  test("serves transactions itself, in order, also when they come split or together", async () => {
    served.length = 0;
    byNode.length = 0;
    const a = put("1", '{"events":[1]}');
    const b = put("2", '{"events":[2]}');
    const c = put("3", '{"events":[3]}');
    const { text } = await exchange([a.slice(0, 20), a.slice(20, a.length - 3), a.slice(a.length - 3) + b + c], (t) => count(t, "HTTP/1.1 200 OK") === 3);
    assert.deepEqual(served, ['1 {"events":[1]}', '2 {"events":[2]}', '3 {"events":[3]}']);
    assert.deepEqual(byNode, []);
    assert.match(text, /Content-Type: application\/json; charset=utf-8\r\nContent-Length: 2\r\nDate: .+\r\nConnection: keep-alive\r\n\r\n\{\}/);
  });

  test("serves the homeserver's ping, so the connection it opens with stays with the front", async () => {
    served.length = 0;
    byNode.length = 0;
    const ping = put("x", '{"transaction_id":"t"}').replace("PUT /_matrix/app/v1/transactions/x", "POST /_matrix/app/v1/ping");
    await exchange([ping + put("5", "{}")], (t) => count(t, "HTTP/1.1 200 OK") === 2);
    assert.deepEqual(served, ['ping {"transaction_id":"t"}', "5 {}"]);
    assert.deepEqual(byNode, []);
  });

  test("hands a connection to Node at the first request it does not serve, with its bytes intact", async () => {
    served.length = 0;
    byNode.length = 0;
    const first = put("10", '{"events":[]}');
    const odd = put("11", '{"events":[]}', { Authorization: "Bearer wrong" });
    const get = "GET /metrics HTTP/1.1\r\nHost: bridge\r\n\r\n";
    const { text } = await exchange([first + odd.slice(0, 30), odd.slice(30) + get], (t) => count(t, "NODE") === 2);
    assert.deepEqual(served, ['10 {"events":[]}']);
    assert.deepEqual(byNode, ['PUT /_matrix/app/v1/transactions/11 {"events":[]}', "GET /metrics "]);
    assert.equal(count(text, "HTTP/1.1 200 OK"), 1);
  });

  test("a request that is still being served holds the next one back until it is answered", async () => {
    served.length = 0;
    hold = true;
    const pending = exchange([put("20", "{}") + put("21", "{}")], (t) => count(t, "200 OK") === 2);
    await waitUntil(() => held.length === 1);
    assert.deepEqual(served, ["20 {}"], "the second is not read before the first is answered");
    hold = false;
    held.shift()!();
    const { text } = await pending;
    assert.deepEqual(served, ["20 {}", "21 {}"]);
    assert.equal(count(text, "200 OK"), 2);
  });

  test("a request that cannot be one it serves goes to Node before it is whole", async () => {
    byNode.length = 0;
    // Bare line feeds, and a broken request line: Node refuses both at once, while the front
    // alone would still be waiting for CR LF CR LF.
    const bare = exchange([put("50", "{}").replaceAll("\r\n", "\n")], (t) => t.includes("HTTP/1.1"));
    const broken = exchange(["PUT /_matrix/app/v1/transactions/5 1 HTTP/1.1\r\nHost: x\r\n"], (t) => t.includes("HTTP/1.1"));
    for (const { text } of await Promise.all([bare, broken])) assert.match(text, /^HTTP\/1\.1 400 /);
  });

  test("what piles up while a transaction is served is bounded: past one request's worth, the connection is cut", async () => {
    served.length = 0;
    held.length = 0;
    hold = true;
    const { closed } = await exchange([put("60", "{}"), "x".repeat(6_000)], () => false);
    hold = false;
    held.length = 0;
    assert.ok(closed);
    assert.deepEqual(served, ["60 {}"]);
  });

  test("after an answer with Connection: close, a client that keeps its side open (and sends on) is disconnected", async () => {
    const socket = connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    let text = "";
    socket.on("data", (d) => (text += d.toString()));
    socket.write(put("70", "{}", { Connection: "close" }));
    const more = setInterval(() => socket.writable && socket.write("x".repeat(1000)), 20);
    const closed = await new Promise<boolean>((resolve) => {
      socket.on("close", () => resolve(true));
      socket.on("error", () => undefined);
      setTimeout(() => resolve(false), 2_000);
    });
    clearInterval(more);
    socket.destroy();
    assert.match(text, /^HTTP\/1\.1 200 OK/);
    assert.ok(closed, "the front closed the connection (it did not leave it half-open, reading on)");
  });

  test("a body that is not JSON gets 400 M_NOT_JSON and the connection closes", async () => {
    const { text, closed } = await exchange([put("30", "{nope")], () => false);
    assert.match(text, /^HTTP\/1\.1 400 Bad Request/);
    assert.match(text, /"errcode":"M_NOT_JSON"/);
    assert.ok(closed);
  });

  test("a request that stalls gets 408 and the connection closes", async () => {
    const raw = put("40", '{"events":[]}');
    const started = Date.now();
    const { text, closed } = await exchange([raw.slice(0, raw.length - 4)], () => false);
    assert.match(text, /^HTTP\/1\.1 408 /);
    assert.ok(closed);
    assert.ok(Date.now() - started >= 450, "not before the request timeout");
  });
});

describe("the transaction front's idle and request timers", () => {
  let server: Server;
  let port: number;
  let front: TransactionFront;
  const holdMs = 600;

  before(async () => {
    server = createServer((_req, res) => res.writeHead(418).end());
    front = new TransactionFront(
      server,
      { ...tokenCheck, serve: (_txnId, _body, answer) => void setTimeout(() => answer.ok(), holdMs), ping: (_body, answer) => answer.ok() },
      { maxHeaderBytes: 4096, maxBodyBytes: 1000, requestTimeoutMs: 2_000, idleTimeoutMs: 300 },
    );
    port = await listening(server);
  });
  after(() => closeFront(front, server));

  /** A socket whose received text, close and its time are recorded. */
  function client(): { socket: ReturnType<typeof connect>; text: () => string; closedAt: () => number | null } {
    const socket = connect(port, "127.0.0.1");
    let text = "";
    let closedAt: number | null = null;
    socket.on("data", (d) => (text += d.toString()));
    socket.on("close", () => (closedAt = Date.now()));
    socket.on("error", () => undefined);
    return { socket, text: () => text, closedAt: () => closedAt };
  }

  test("a connection with no request is closed after the idle timeout", async () => {
    const started = Date.now();
    const c = client();
    await waitUntil(() => c.closedAt() !== null);
    assert.ok(c.closedAt()! - started >= 250, "not before the idle timeout");
  });

  test("a transaction served for longer than the idle timeout is answered, and the idle time counts from its answer", async () => {
    const c = client();
    c.socket.write(put("slow", '{"events":[]}'));
    await waitUntil(() => c.text().includes("\r\n\r\n{}") || c.closedAt() !== null);
    assert.match(c.text(), /^HTTP\/1\.1 200 /);
    const answeredAt = Date.now();
    assert.equal(c.closedAt(), null, "still open right after the answer");
    await waitUntil(() => c.closedAt() !== null);
    assert.ok(c.closedAt()! - answeredAt >= 250, "closed an idle timeout after the answer, not before");
  });

  test("a request still being read when the idle time passes is not cut: it has the request timeout", async () => {
    const c = client();
    const raw = put("split", '{"events":[]}');
    c.socket.write(raw.slice(0, 20));
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(c.closedAt(), null, "open past the idle timeout while the request is incomplete");
    c.socket.write(raw.slice(20));
    await waitUntil(() => c.text().includes("\r\n\r\n{}") || c.closedAt() !== null);
    assert.match(c.text(), /^HTTP\/1\.1 200 /);
    c.socket.destroy();
  });
});

/** Listens on a free local port, which it returns. */
async function listening(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

async function closeFront(front: TransactionFront, server: Server): Promise<void> {
  front.closeConnections();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

async function waitUntil(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
}
