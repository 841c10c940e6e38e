/**
 * The hot path's HTTP client (a ghost's message into a room, once per IRC line): a request
 * written on a kept-alive plain-HTTP socket and its answer read from the bytes. Node's client
 * builds a request stream, a response stream, an agent's bookkeeping and their events for each
 * call; at a steady few lines a second that was the largest cost left of relaying one (see
 * bench/relayCost.ts).
 *
 * It reads the two framings Synapse answers with: `HTTP/1.1 <status>` with one Content-Length,
 * or with `Transfer-Encoding: chunked` (Synapse streams its JSON answers, a send's included, in
 * chunks). Anything else (another transfer coding, no length, a socket closed before the whole
 * answer) is a `Reframe` error and nothing else: the caller sends the call again through Node's
 * client (leanRequest.ts). A send under a transaction ID is idempotent, so a call the
 * homeserver did take is not doubled. An answer whose framing it does not read (a proxy that
 * compresses, an HTTP/1.0 server) turns it off for good: the homeserver's calls are then all
 * made by Node's client, rather than each made twice.
 */
import { connect, type Socket } from "node:net";

/** The answer could not be read here: send the call again through Node's client. */
export class Reframe extends Error {
  constructor(reason: string) {
    super(`raw HTTP answer not read: ${reason}`);
    this.name = "Reframe";
  }
}

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

type Done = (err: Error | null, answer?: RawAnswer) => void;

const STATUS_LINE = /^HTTP\/1\.1 (\d{3})(?: .*)?$/;
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/;
/** Idle sockets kept per target: more than this many at once are closed after their answer. */
const MAX_IDLE = 4;
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

/** The head of an answer, or a reason it is not one this client reads. */
function parseHead(head: string): { status: number; headers: Record<string, string>; length: number | "chunked"; close: boolean } | string {
  const lines = head.split("\r\n");
  const status = STATUS_LINE.exec(lines[0])?.[1];
  if (!status) return "status line";
  const headers: Record<string, string> = {};
  let length: number | "chunked" | null = null;
  let close = false;
  for (let i = 1; i < lines.length; i++) {
    const match = HEADER_LINE.exec(lines[i]);
    if (!match) return "header line";
    const name = match[1].toLowerCase();
    const value = match[2];
    if (name === "transfer-encoding") {
      // Only plain chunking, named once; a Content-Length beside it is a smuggling shape.
      if (length !== null || value.toLowerCase() !== "chunked") return "transfer-encoding";
      length = "chunked";
    }
    if (name === "content-length") {
      if (length !== null || !/^\d{1,9}$/.test(value)) return "content-length";
      length = Number(value);
    }
    if (name === "connection" && value.toLowerCase().includes("close")) close = true;
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  if (length === null || (length !== "chunked" && length > MAX_ANSWER_BYTES)) return "content-length";
  return { status: Number(status), headers, length, close };
}

const CHUNK_SIZE_LINE = /^([0-9a-fA-F]{1,8})[ \t]*(?:;[^\r\n]*)?$/;
const MAX_CHUNK_LINE = 4096;

/**
 * A chunked body starting at `start`: its bytes and where the answer ends (after the last
 * chunk and any trailer lines), null while more bytes are needed, or a reason it is malformed.
 */
export function readChunkedBody(buffer: Buffer, start: number): { body: Buffer; end: number } | null | string {
  const parts: Buffer[] = [];
  let size = 0;
  let pos = start;
  for (;;) {
    const lineEnd = buffer.indexOf("\r\n", pos);
    if (lineEnd === -1) return buffer.length - pos > MAX_CHUNK_LINE ? "chunk size line" : null;
    const match = CHUNK_SIZE_LINE.exec(buffer.toString("latin1", pos, lineEnd));
    if (!match) return "chunk size line";
    const chunkSize = parseInt(match[1], 16);
    pos = lineEnd + 2;
    if (chunkSize === 0) break;
    size += chunkSize;
    if (size > MAX_ANSWER_BYTES) return "chunked body too large";
    if (buffer.length < pos + chunkSize + 2) return null;
    if (buffer[pos + chunkSize] !== 0x0d || buffer[pos + chunkSize + 1] !== 0x0a) return "chunk end";
    parts.push(buffer.subarray(pos, pos + chunkSize));
    pos += chunkSize + 2;
  }
  // Trailer lines (ignored), then the empty line that ends the answer.
  for (;;) {
    const lineEnd = buffer.indexOf("\r\n", pos);
    if (lineEnd === -1) return buffer.length - pos > MAX_CHUNK_LINE ? "trailer line" : null;
    if (lineEnd === pos) return { body: parts.length === 1 ? parts[0] : Buffer.concat(parts), end: pos + 2 };
    pos = lineEnd + 2;
  }
}

/** One socket's single call in flight: reads its answer from the bytes as they come. */
class Exchange {
  private buffer: Buffer = Buffer.alloc(0);
  private done: Done | null;

  constructor(
    readonly socket: Socket,
    done: Done,
    private readonly release: (socket: Socket, reusable: boolean) => void,
    private readonly unreadable: () => void,
  ) {
    this.done = done;
    socket.on("data", this.onData);
    socket.on("end", this.onEnd);
    socket.on("error", this.onError);
    socket.on("close", this.onEnd);
  }

  /** Ends the call with `err` (a timeout) and closes the socket. */
  abort(err: Error): void {
    this.finish(err, undefined, false);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const headEnd = this.buffer.indexOf("\r\n\r\n");
    if (headEnd === -1) {
      if (this.buffer.length > 64 * 1024) this.finish(new Reframe("head too large"), undefined, false);
      return;
    }
    const head = parseHead(this.buffer.toString("latin1", 0, headEnd));
    if (typeof head === "string") {
      this.unreadable();
      return this.finish(new Reframe(head), undefined, false);
    }
    let body: Buffer;
    let end: number;
    if (head.length === "chunked") {
      const chunked = readChunkedBody(this.buffer, headEnd + 4);
      if (chunked === null) return;
      if (typeof chunked === "string") {
        this.unreadable();
        return this.finish(new Reframe(chunked), undefined, false);
      }
      ({ body, end } = chunked);
    } else {
      end = headEnd + 4 + head.length;
      if (this.buffer.length < end) return;
      body = this.buffer.subarray(headEnd + 4, end);
    }
    // Bytes past the answer were not asked for: the socket is not reused then.
    const reusable = !head.close && this.buffer.length === end;
    this.finish(null, { status: head.status, headers: head.headers, body: body.toString("utf8") }, reusable);
  };

  private readonly onEnd = (): void => {
    this.finish(new Reframe("the connection closed before the whole answer"), undefined, false);
  };

  private readonly onError = (err: Error): void => {
    this.finish(new Reframe(err.message), undefined, false);
  };

  private finish(err: Error | null, answer: RawAnswer | undefined, reusable: boolean): void {
    const done = this.done;
    if (!done) return;
    this.done = null;
    this.socket.off("data", this.onData);
    this.socket.off("end", this.onEnd);
    this.socket.off("error", this.onError);
    this.socket.off("close", this.onEnd);
    this.release(this.socket, reusable);
    done(err, answer);
  }
}

/** Plain-HTTP calls to one host and port over kept-alive sockets. */
export class RawJsonClient {
  private readonly idle: Socket[] = [];
  private readonly hostHeader: string;
  /** False once an answer came that this client does not read (see above). */
  usable = true;

  constructor(
    private readonly hostname: string,
    private readonly port: number,
  ) {
    this.hostHeader = hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
  }

  /**
   * Sends `method path` with `headers` (a "Name: value\r\n" block, names and values already
   * checked by the caller) and `payload`; `done` gets the answer, a Reframe error (send it again
   * another way), or the error it was aborted with. Returns the abort function.
   */
  request(method: string, path: string, headers: string, payload: Buffer, done: Done): (err: Error) => void {
    const socket = this.takeIdle() ?? this.open();
    const exchange = new Exchange(socket, done, (s, reusable) => this.release(s, reusable), () => (this.usable = false));
    // One write (one syscall, one packet): the head is ASCII (the caller checked it).
    const head = `${method} ${path} HTTP/1.1\r\nHost: ${this.hostHeader}\r\n${headers}Content-Length: ${payload.length}\r\n\r\n`;
    socket.write(Buffer.concat([Buffer.from(head, "latin1"), payload]));
    return (err) => exchange.abort(err);
  }

  private takeIdle(): Socket | null {
    for (let socket = this.idle.pop(); socket; socket = this.idle.pop()) {
      socket.off("close", this.dropIdle);
      socket.off("error", this.dropIdle);
      socket.off("data", this.dropIdle);
      if (!socket.destroyed && socket.writable) {
        socket.ref();
        return socket;
      }
    }
    return null;
  }

  private open(): Socket {
    const socket = connect({ host: this.hostname, port: this.port, noDelay: true });
    socket.setKeepAlive(true, 60_000);
    return socket;
  }

  private release(socket: Socket, reusable: boolean): void {
    if (!reusable || this.idle.length >= MAX_IDLE || socket.destroyed) return void socket.destroy();
    socket.on("close", this.dropIdle);
    socket.on("error", this.dropIdle);
    socket.on("data", this.dropIdle); // nothing is asked: whatever comes means the socket is unusable
    socket.unref();
    this.idle.push(socket);
  }

  /** An idle socket closed, failed or said something unasked: it is dropped from the pool. */
  private readonly dropIdle = function (this: Socket): void {
    this.destroy();
  };
}
