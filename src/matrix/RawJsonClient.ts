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

/** Idle sockets kept per target: more than this many at once are closed after their answer. */
const MAX_IDLE = 4;
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;
/** Every socket reads into this (net's `onread`): no Readable stream, no 'data' events; what is kept past a read is copied. */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** Header name characters (RFC 9110 token), by char code. */
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+.^_`|~-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TOKEN[c.charCodeAt(0)] = 1;

interface Head {
  status: number;
  headers: Record<string, string>;
  length: number | "chunked";
  close: boolean;
  /** Where the body starts in the answer's bytes. */
  start: number;
}

/**
 * Where the line starting at `pos` of `head` ends (its CR, or the head's end), or -1 when it has a
 * CR or LF of its own (a bare one: not HTTP/1.1 framing). indexOf rather than a split and regexes:
 * this runs on each of Synapse's ten or so header lines, once per relayed message.
 */
function lineEnd(head: string, pos: number): number {
  const lf = head.indexOf("\n", pos);
  const cr = head.indexOf("\r", pos);
  if (lf === -1) return cr === -1 ? head.length : -1;
  return cr === lf - 1 && cr > pos ? cr : -1;
}

/** The head of an answer (its bytes up to the blank line, as latin1), or a reason it is not one this client reads. */
function parseHead(head: string, start: number): Head | string {
  let end = lineEnd(head, 0);
  // HTTP/1.1 <3 digits>[ <reason>]
  if (end < 12 || !head.startsWith("HTTP/1.1 ") || (end > 12 && head.charCodeAt(12) !== 0x20)) return "status line";
  const status = head.charCodeAt(9) - 48, tens = head.charCodeAt(10) - 48, units = head.charCodeAt(11) - 48;
  if (!(status >= 0 && status <= 9 && tens >= 0 && tens <= 9 && units >= 0 && units <= 9)) return "status line";
  const headers: Record<string, string> = {};
  let length: number | "chunked" | null = null;
  let close = false;
  for (let pos = end + 2; pos < head.length; pos = end + 2) {
    end = lineEnd(head, pos);
    const colon = head.indexOf(":", pos);
    if (end === -1 || colon <= pos || colon > end) return "header line";
    for (let i = pos; i < colon; i++) if (TOKEN[head.charCodeAt(i)] !== 1) return "header line";
    // The value without the spaces and tabs around it (CR and LF were refused above).
    let from = colon + 1, to = end;
    for (let c = head.charCodeAt(from); from < to && (c === 0x20 || c === 0x09); c = head.charCodeAt(++from));
    for (let c = head.charCodeAt(to - 1); to > from && (c === 0x20 || c === 0x09); c = head.charCodeAt(--to - 1));
    const name = head.slice(pos, colon).toLowerCase();
    const value = head.slice(from, to);
    if (name === "transfer-encoding") {
      // Only plain chunking, named once; a Content-Length beside it is a smuggling shape.
      if (length !== null || value.toLowerCase() !== "chunked") return "transfer-encoding";
      length = "chunked";
    } else if (name === "content-length") {
      if (length !== null || !/^\d{1,9}$/.test(value)) return "content-length";
      length = Number(value);
    } else if (name === "connection" && value.toLowerCase().includes("close")) close = true;
    // The record the callers get (a MatrixError reads Retry-After from it), as Node's client joins repeats.
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  if (length === null || (length !== "chunked" && length > MAX_ANSWER_BYTES)) return "content-length";
  return { status: status * 100 + tens * 10 + units, headers, length, close, start };
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

/**
 * A socket and the listeners it gets once, when it opens (not on/off per call): each goes to
 * the call in flight, or, while the socket is idle in the pool, drops it.
 */
class Conn {
  readonly socket: Socket;
  /** The call in flight; null while idle. */
  exchange: Exchange | null = null;

  constructor(host: string, port: number) {
    this.socket = connect({ host, port, noDelay: true, onread: { buffer: READ_BUFFER, callback: this.onRead } });
    this.socket.setKeepAlive(true, 60_000);
    this.socket.on("end", this.onEnd);
    this.socket.on("close", this.onEnd);
    this.socket.on("error", this.onError);
  }

  private readonly onRead = (bytes: number): boolean => {
    // Nothing is asked of an idle socket: whatever comes means it is unusable.
    if (this.exchange) this.exchange.onData(READ_BUFFER.subarray(0, bytes));
    else this.socket.destroy();
    return true;
  };

  /** An end or close: before the whole answer, a Reframe; an idle socket is dropped (see takeIdle). */
  private readonly onEnd = (): void => {
    if (this.exchange) this.exchange.finish(new Reframe("the connection closed before the whole answer"), undefined, false);
    else this.socket.destroy();
  };

  private readonly onError = (err: Error): void => {
    if (this.exchange) this.exchange.finish(new Reframe(err.message), undefined, false);
    else this.socket.destroy();
  };
}

const EMPTY = Buffer.alloc(0);

/** One socket's single call in flight: reads its answer from the bytes as they come. */
class Exchange {
  /** The answer's bytes so far: `buffer` is the filled start of `store`, which grows by doubling. */
  private buffer: Buffer = EMPTY;
  private store: Buffer = this.buffer;
  private head: Head | null = null;
  private chunked: ChunkedBody | null = null;
  private done: Done | null;

  constructor(
    private readonly conn: Conn,
    done: Done,
    private readonly release: (conn: Conn, reusable: boolean) => void,
    private readonly unreadable: () => void,
  ) {
    this.done = done;
    conn.exchange = this;
  }

  /** Ends the call with `err` (a timeout) and closes the socket. */
  abort(err: Error): void {
    this.finish(err, undefined, false);
  }

  /** A read: `chunk` is a view of READ_BUFFER, valid until this returns. */
  onData(chunk: Buffer): void {
    if (this.buffer.length > 0) {
      this.append(chunk);
      return this.read();
    }
    // The first read, read where it lies: a Synapse answer mostly comes whole in one. If more is
    // to come, its bytes are copied, and a chunked body read again from the copy (its parts were
    // views of READ_BUFFER).
    this.buffer = this.store = chunk;
    this.read();
    if (this.done && this.buffer === chunk) {
      this.buffer = this.store = Buffer.from(chunk);
      this.chunked = null;
    }
  }

  private read(): void {
    const buffer = this.buffer;
    if (buffer.length > MAX_ANSWER_BYTES + 64 * 1024) return this.finish(new Reframe("answer too large"), undefined, false);
    let head = this.head;
    if (!head) {
      const headEnd = buffer.indexOf("\r\n\r\n");
      if (headEnd === -1) {
        if (buffer.length > 64 * 1024) this.finish(new Reframe("head too large"), undefined, false);
        return;
      }
      const parsed = parseHead(buffer.toString("latin1", 0, headEnd), headEnd + 4);
      if (typeof parsed === "string") {
        this.unreadable();
        return this.finish(new Reframe(parsed), undefined, false);
      }
      head = this.head = parsed;
    }
    let body: Buffer;
    let end: number;
    if (head.length === "chunked") {
      const chunked = (this.chunked ??= new ChunkedBody(head.start)).read(buffer);
      if (chunked === null) return;
      if (typeof chunked === "string") {
        this.unreadable();
        return this.finish(new Reframe(chunked), undefined, false);
      }
      ({ body, end } = chunked);
    } else {
      end = head.start + head.length;
      if (buffer.length < end) return;
      body = buffer.subarray(head.start, end);
    }
    // Bytes past the answer were not asked for: the socket is not reused then; nor while part of
    // the request is still unwritten (an early answer), whose rest the server would read as a request.
    const reusable = !head.close && buffer.length === end && this.conn.socket.writableLength === 0;
    this.finish(null, { status: head.status, headers: head.headers, body: body.toString("utf8") }, reusable);
  }

  /** Adds a read to the answer's bytes, into a store that doubles (no copy of all per read). */
  private append(chunk: Buffer): void {
    const length = this.buffer.length;
    if (this.store === this.buffer || length + chunk.length > this.store.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.store.length, length + chunk.length));
      this.buffer.copy(grown, 0, 0, length);
      this.store = grown;
    }
    chunk.copy(this.store, length);
    this.buffer = this.store.subarray(0, length + chunk.length);
  }

  finish(err: Error | null, answer: RawAnswer | undefined, reusable: boolean): void {
    const done = this.done;
    if (!done) return;
    this.done = null;
    this.conn.exchange = null;
    this.release(this.conn, reusable);
    done(err, answer);
  }
}

/** Plain-HTTP calls to one host and port over kept-alive sockets. */
export class RawJsonClient {
  private readonly idle: Conn[] = [];
  private readonly hostHeader: string;
  /** False once an answer came that this client does not read (see above). */
  usable = true;
  private readonly releaseConn = (conn: Conn, reusable: boolean) => this.release(conn, reusable);
  private readonly unreadable = () => void (this.usable = false);

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
    const conn = this.takeIdle() ?? new Conn(this.hostname, this.port);
    const exchange = new Exchange(conn, done, this.releaseConn, this.unreadable);
    // One write (one syscall, one packet): the head is ASCII (the caller checked it).
    const head = `${method} ${path} HTTP/1.1\r\nHost: ${this.hostHeader}\r\n${headers}Content-Length: ${payload.length}\r\n\r\n`;
    const bytes = Buffer.allocUnsafe(head.length + payload.length);
    bytes.write(head, 0, "latin1");
    payload.copy(bytes, head.length);
    conn.socket.write(bytes);
    return (err) => exchange.abort(err);
  }

  private takeIdle(): Conn | null {
    for (let conn = this.idle.pop(); conn; conn = this.idle.pop()) {
      // One that closed, failed or spoke while idle was destroyed by its listeners (Conn).
      if (!conn.socket.destroyed && conn.socket.writable) {
        conn.socket.ref();
        return conn;
      }
    }
    return null;
  }

  private release(conn: Conn, reusable: boolean): void {
    if (!reusable || this.idle.length >= MAX_IDLE || conn.socket.destroyed) return void conn.socket.destroy();
    conn.socket.unref();
    this.idle.push(conn);
  }
}
