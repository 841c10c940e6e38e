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
/** The longest chunk-size line, and all trailer lines together, that an answer may have. */
const MAX_CHUNK_LINE = 4096;
const MAX_TRAILERS = 64 * 1024;

/** Where the CRLF ending the line at `pos` starts; -1: not here yet; -2: a bare LF (not HTTP/1.1 framing). */
function lineEndAt(buffer: Buffer, pos: number): number {
  const lf = buffer.indexOf(0x0a, pos);
  if (lf === -1) return -1;
  return lf > pos && buffer[lf - 1] === 0x0d ? lf - 1 : -2;
}

/**
 * A chunked body, read as its bytes come: each call goes on from where the last one stopped
 * (the buffer only grows at its end), so every byte is looked at once.
 */
export class ChunkedBody {
  private pos: number;
  private readonly parts: Buffer[] = [];
  private size = 0;
  private trailers = -1;

  constructor(start: number) {
    this.pos = start;
  }

  /** The body and where the answer ends (after its trailers), null while more bytes are needed, or why it is malformed. */
  read(buffer: Buffer): { body: Buffer; end: number } | null | string {
    while (this.trailers < 0) {
      const lineEnd = lineEndAt(buffer, this.pos);
      if (lineEnd === -2) return "bare LF";
      if (lineEnd === -1) return buffer.length - this.pos > MAX_CHUNK_LINE ? "chunk size line" : null;
      if (lineEnd - this.pos > MAX_CHUNK_LINE) return "chunk size line";
      const match = CHUNK_SIZE_LINE.exec(buffer.toString("latin1", this.pos, lineEnd));
      if (!match) return "chunk size line";
      const chunkSize = parseInt(match[1], 16);
      if (chunkSize === 0) {
        this.pos = lineEnd + 2;
        this.trailers = 0;
        break;
      }
      if (this.size + chunkSize > MAX_ANSWER_BYTES) return "chunked body too large";
      const dataStart = lineEnd + 2;
      if (buffer.length < dataStart + chunkSize + 2) return null;
      if (buffer[dataStart + chunkSize] !== 0x0d || buffer[dataStart + chunkSize + 1] !== 0x0a) return "chunk end";
      this.parts.push(buffer.subarray(dataStart, dataStart + chunkSize));
      this.size += chunkSize;
      this.pos = dataStart + chunkSize + 2;
    }
    // Trailer lines (ignored), then the empty line that ends the answer.
    for (;;) {
      const lineEnd = lineEndAt(buffer, this.pos);
      if (lineEnd === -2) return "bare LF";
      if (lineEnd === -1) return this.trailers + buffer.length - this.pos > MAX_TRAILERS ? "trailers too large" : null;
      if (lineEnd === this.pos) return { body: this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts), end: this.pos + 2 };
      this.trailers += lineEnd + 2 - this.pos;
      if (this.trailers > MAX_TRAILERS) return "trailers too large";
      this.pos = lineEnd + 2;
    }
  }
}

/** One socket's single call in flight: reads its answer from the bytes as they come. */
class Exchange {
  /** The answer's bytes so far: `buffer` is the filled start of `store`, which grows by doubling. */
  private buffer: Buffer = Buffer.alloc(0);
  private store: Buffer = this.buffer;
  private chunked: ChunkedBody | null = null;
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
    this.append(chunk);
    if (this.buffer.length > MAX_ANSWER_BYTES + 64 * 1024) return this.finish(new Reframe("answer too large"), undefined, false);
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
      const chunked = (this.chunked ??= new ChunkedBody(headEnd + 4)).read(this.buffer);
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
    // Bytes past the answer were not asked for: the socket is not reused then; nor while part of
    // the request is still unwritten (an early answer), whose rest the server would read as a request.
    const reusable = !head.close && this.buffer.length === end && this.socket.writableLength === 0;
    this.finish(null, { status: head.status, headers: head.headers, body: body.toString("utf8") }, reusable);
  };

  /** Adds a read to the answer's bytes: the first as it is, later ones into a store that doubles (no copy of all per read). */
  private append(chunk: Buffer): void {
    const length = this.buffer.length;
    if (length === 0) {
      this.buffer = this.store = chunk;
      return;
    }
    if (this.store === this.buffer || length + chunk.length > this.store.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.store.length, length + chunk.length));
      this.buffer.copy(grown, 0, 0, length);
      this.store = grown;
    }
    chunk.copy(this.store, length);
    this.buffer = this.store.subarray(0, length + chunk.length);
  }

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
