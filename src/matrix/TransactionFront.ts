/**
 * The appservice port's front door for the one request that comes once per relayed message:
 * the homeserver's `PUT /_matrix/app/v1/transactions/{txnId}`. Node's HTTP server builds a
 * request stream, a response stream and their events for each request; on a small VM at a
 * steady few messages a second that was ~0.4 ms of CPU per transaction, more than the rest of
 * accepting it (see bench/relayCost.ts). So each new connection is read here first, and a
 * request that is exactly what Synapse sends is served from the socket's bytes:
 *
 *   PUT /_matrix/app/v1/transactions/<plain id> HTTP/1.1 (or Synapse's
 *   POST /_matrix/app/v1/ping at start-up, on the connection it then keeps), plain header lines, one
 *   Content-Length within the limit, Content-Type JSON (UTF-8 if named), no Transfer-Encoding,
 *   Expect, Upgrade or Content-Encoding, and `Authorization: Bearer <the homeserver's token>`.
 *
 * Anything else, at any point of a connection (an odd header, a wrong token, another path, a
 * request too large), and the connection is handed to Node's server with the bytes not yet
 * served put back: from then on Node parses it and the express app answers, with the hardened
 * answers it always gave (4xx with Matrix codes, 408 for stalled requests). Only what is
 * surely fine is taken here; doubt always goes to Node. Requests on one connection are
 * answered in order (one at a time, as Synapse sends them). A connection handed over for a
 * rare request (a user query) is not lost for good: Node ends its connections after
 * `maxRequestsPerSocket` (asHttp.ts), and the homeserver's next one comes here first.
 */
import { STATUS_CODES, type Server } from "node:http";
import type { Socket } from "node:net";
import { PLAIN_JSON } from "./asHttp.js";
import { MAX_JSON_DEPTH, surelyShallow } from "./transactionBody.js";

/** How a transaction taken here is answered (once). */
export interface TransactionAnswer {
  /** 200 with `{}`. */
  ok(): void;
  fail(status: number, errcode: string, error: string): void;
}

export interface FrontHandlers {
  tokenMatches(token: string): boolean;
  /** Called with a parsed body (`shallow`: its text nests no deeper than MAX_JSON_DEPTH); must answer through `answer`, once. */
  serve(txnId: string, body: unknown, answer: TransactionAnswer, shallow: boolean): void;
  /** The homeserver's ping (`txnId` is null then). */
  ping(body: unknown, answer: TransactionAnswer): void;
}

export interface FrontLimits {
  maxHeaderBytes: number;
  maxBodyBytes: number;
  /** From a request's first byte to its last: past it, 408 and the connection closed (as Node does). */
  requestTimeoutMs: number;
  /** A connection with no request for this long is closed. */
  idleTimeoutMs: number;
}

const REQUEST_LINE = /^(?:PUT \/_matrix\/app\/v1\/transactions\/([A-Za-z0-9._~=+:@-]{1,200})|POST \/_matrix\/app\/v1\/ping) HTTP\/1\.1$/;
/** A header name: a token. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A header value (with the spaces and tabs around it): visible ASCII, spaces and tabs only. */
const HEADER_VALUE = /^[\x20-\x7e\t]*$/;
/** Headers whose presence means "let Node do it". */
const HANDED_OVER_HEADERS = new Set(["transfer-encoding", "expect", "upgrade"]);
/** The lengths of the header names read here or handed over: any other header is only checked for syntax. */
const READ_NAME_LENGTHS = new Set(["content-length", "content-type", "authorization", "content-encoding", "connection", ...HANDED_OVER_HEADERS].map((name) => name.length));

interface PlainRequest {
  /** null for the ping. */
  txnId: string | null;
  contentLength: number;
  close: boolean;
}

/** The request's head (up to, not including, the blank line) if it is one this front serves, else null. */
export function parsePlainHead(head: string, handlers: Pick<FrontHandlers, "tokenMatches">, maxBodyBytes: number): PlainRequest | null {
  let lineEnd = head.indexOf("\r\n");
  const requestLine = REQUEST_LINE.exec(lineEnd === -1 ? head : head.slice(0, lineEnd));
  if (!requestLine) return null;
  const txnId = requestLine[1] ?? null;
  if (txnId === "." || txnId === "..") return null;
  let contentLength: number | null = null;
  let type: string | null = null;
  let token: string | null = null;
  let close = false;
  while (lineEnd !== -1) {
    const start = lineEnd + 2;
    lineEnd = head.indexOf("\r\n", start);
    const line = lineEnd === -1 ? head.slice(start) : head.slice(start, lineEnd);
    const colon = line.indexOf(":");
    if (colon <= 0) return null;
    const rawName = line.slice(0, colon);
    const rawValue = line.slice(colon + 1);
    if (!HEADER_NAME.test(rawName) || !HEADER_VALUE.test(rawValue)) return null;
    if (!READ_NAME_LENGTHS.has(colon)) continue;
    const name = rawName.toLowerCase();
    const value = rawValue.trim(); // only spaces and tabs can be around it (HEADER_VALUE)
    if (HANDED_OVER_HEADERS.has(name)) return null;
    if (name === "content-length") {
      if (contentLength !== null || !/^\d{1,9}$/.test(value)) return null;
      contentLength = Number(value);
    } else if (name === "content-type") {
      if (type !== null) return null;
      type = value;
    } else if (name === "authorization") {
      if (token !== null || !value.startsWith("Bearer ")) return null;
      token = value.slice(7);
    } else if (name === "content-encoding") {
      if (value.toLowerCase() !== "identity") return null;
    } else if (name === "connection") {
      const option = value.toLowerCase();
      if (option === "close") close = true;
      else if (option !== "keep-alive") return null;
    }
  }
  if (contentLength === null || contentLength > maxBodyBytes || type === null || !PLAIN_JSON.test(type)) return null;
  if (token === null || !handlers.tokenMatches(token)) return null;
  return { txnId, contentLength, close };
}

/** Whether the start of a request (its head not whole yet) can still be one the front serves. */
function mayBePlainHead(buffer: Buffer): boolean {
  const start = buffer.toString("latin1", 0, Math.min(buffer.length, PUT_PREFIX.length));
  if (!PUT_PREFIX.startsWith(start) && !PING_LINE.startsWith(start)) return false;
  const lineEnd = buffer.indexOf("\r\n");
  if (hasBareLineFeed(buffer, lineEnd === -1 ? buffer.length : lineEnd)) return false;
  return lineEnd === -1 || REQUEST_LINE.test(buffer.toString("latin1", 0, lineEnd));
}

const PUT_PREFIX = "PUT /_matrix/app/v1/transactions/";
const PING_LINE = "POST /_matrix/app/v1/ping HTTP/1.1";

/** A line feed without a carriage return before it (Node decides what such a request gets). */
function hasBareLineFeed(buffer: Buffer, end: number): boolean {
  for (let at = buffer.indexOf(10); at !== -1 && at < end; at = buffer.indexOf(10, at + 1)) if (at === 0 || buffer[at - 1] !== 13) return true;
  return false;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const EMPTY = Buffer.alloc(0);

let dateSecond = 0;
let dateText = "";
/** The Date header's value, made once a second. */
function httpDate(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(second * 1000).toUTCString();
  }
  return dateText;
}

/** One connection, read by the front until it is handed to Node (or closes). */
class FrontConnection {
  private buffer: Buffer = EMPTY;
  /** A transaction is being served: its answer goes out before the next request is read. */
  private busy = false;
  private inRequest = false;
  private handedOver = false;
  private closing = false;
  /** The client sent all it will (its end came). */
  private ended = false;
  /** An answer is waiting in the socket's buffer (the client does not read): nothing more is read until it drains. */
  private draining = false;
  /**
   * Two timers, so that a request that comes whole in one read (each of Synapse's, nearly) sets
   * none: the idle one is refreshed after each answer, the request one armed only while a
   * request waits for the rest of its bytes.
   */
  private readonly idleTimer: NodeJS.Timeout;
  private requestTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly socket: Socket,
    private readonly handlers: FrontHandlers,
    private readonly limits: FrontLimits,
    private readonly handOverTo: (socket: Socket) => void,
    private readonly forget: (conn: FrontConnection) => void,
  ) {
    socket.on("data", this.onData);
    socket.on("error", this.onError);
    socket.on("end", this.onEnd);
    socket.on("close", this.onClose);
    socket.on("drain", this.onDrain);
    this.idleTimer = setTimeout(this.onIdle, limits.idleTimeoutMs).unref();
  }

  /** Closes the connection when it is idle now, or once the answer being written is out. */
  close(): void {
    this.closing = true;
    if (!this.busy && !this.inRequest) this.shut();
  }

  private readonly onData = (chunk: Buffer): void => {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    // Only what comes while a request is being served (or its answer drains) can pile up here: more than one whole request of it is refused.
    if ((this.busy || this.draining) && this.buffer.length > this.limits.maxHeaderBytes + this.limits.maxBodyBytes + 4) return void this.socket.destroy();
    this.pump();
  };

  private readonly onError = (): void => {
    this.socket.destroy();
  };

  /** The client sent all it will (the server allows half-open sockets): answer what is being served, then close. */
  private readonly onEnd = (): void => {
    this.ended = true;
    if (this.busy) this.closing = true;
    else this.socket.destroy();
  };

  private readonly onDrain = (): void => {
    this.draining = false;
    this.pump();
  };

  private readonly onClose = (): void => {
    this.disarm();
    this.forget(this);
  };

  /** Serves every whole request buffered, one at a time; hands the connection over at the first it will not serve. */
  private pump(): void {
    while (!this.busy && !this.draining && !this.handedOver && this.buffer.length > 0) {
      this.inRequest = true;
      const headEnd = this.buffer.indexOf("\r\n\r\n");
      if (headEnd === -1) {
        // Not whole yet: hand over as soon as it cannot be one of ours (Node then answers at once).
        if (this.buffer.length > this.limits.maxHeaderBytes || !mayBePlainHead(this.buffer)) this.handOver();
        else this.awaitRest();
        return;
      }
      if (hasBareLineFeed(this.buffer, headEnd)) return this.handOver();
      const request = headEnd <= this.limits.maxHeaderBytes ? parsePlainHead(this.buffer.toString("latin1", 0, headEnd), this.handlers, this.limits.maxBodyBytes) : null;
      if (!request) return this.handOver();
      const end = headEnd + 4 + request.contentLength;
      if (this.buffer.length < end) return this.awaitRest();
      const body = this.buffer.subarray(headEnd + 4, end);
      this.buffer = end === this.buffer.length ? EMPTY : this.buffer.subarray(end);
      this.inRequest = false;
      this.clearRequestTimer();
      this.busy = true;
      const answer = this.answerer(request.close || this.closing);
      let parsed: unknown;
      try {
        parsed = JSON.parse(utf8.decode(body));
      } catch {
        answer.fail(400, "M_NOT_JSON", "Request body is not valid JSON", true);
        return;
      }
      if (request.txnId === null) this.handlers.ping(parsed, answer);
      else this.handlers.serve(request.txnId, parsed, answer, surelyShallow(body, MAX_JSON_DEPTH));
    }
    if (!this.busy && !this.draining && !this.inRequest && !this.handedOver) {
      if (this.closing) this.shut();
      else this.idleTimer.refresh();
    }
  }

  private answerer(closeAfter: boolean): TransactionAnswer & { fail(status: number, errcode: string, error: string, close?: boolean): void } {
    let answered = false;
    const send = (status: number, body: string, close: boolean) => {
      if (answered) return;
      answered = true;
      if (this.socket.destroyed) return;
      const head = `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nDate: ${httpDate()}\r\nConnection: ${close ? "close" : "keep-alive"}\r\n\r\n`;
      this.busy = false;
      if (close) {
        this.socket.write(head + body);
        return this.shut();
      }
      if (!this.socket.write(head + body)) this.draining = true;
      this.pump();
    };
    return {
      ok: () => send(200, "{}", closeAfter),
      fail: (status: number, errcode: string, error: string, close: boolean = false) => send(status, JSON.stringify({ errcode, error }), close || closeAfter),
    };
  }

  /**
   * Reads nothing more and closes once what was written is out (destroySoon: the server allows
   * half-open sockets, so ending alone would leave a client that keeps its side open connected).
   */
  private shut(): void {
    this.handedOver = true;
    this.disarm();
    this.socket.off("data", this.onData);
    this.buffer = EMPTY;
    this.socket.destroySoon();
  }

  /** Gives the connection, with the bytes not served yet, to Node's HTTP server. */
  private handOver(): void {
    // After the client's end, Node cannot be given the rest (and nobody would read its answer).
    if (this.ended) return this.shut();
    this.handedOver = true;
    this.disarm();
    this.socket.off("data", this.onData);
    this.socket.off("error", this.onError);
    this.socket.off("end", this.onEnd);
    this.socket.off("close", this.onClose);
    this.socket.off("drain", this.onDrain);
    this.forget(this);
    this.socket.pause();
    if (this.buffer.length > 0) this.socket.unshift(this.buffer);
    this.buffer = EMPTY;
    this.handOverTo(this.socket);
    this.socket.resume();
  }

  /** A request's bytes are not all here: it has until the request timeout, from now (its first bytes) on. */
  private awaitRest(): void {
    this.requestTimer ??= setTimeout(this.onRequestTimeout, this.limits.requestTimeoutMs).unref();
  }

  private clearRequestTimer(): void {
    if (this.requestTimer) clearTimeout(this.requestTimer);
    this.requestTimer = null;
  }

  private disarm(): void {
    clearTimeout(this.idleTimer);
    this.clearRequestTimer();
  }

  /** Closes a connection with no request for the idle timeout; one being served or read is refreshed once answered. */
  private readonly onIdle = (): void => {
    if (this.busy || this.draining || this.inRequest || this.handedOver) return;
    this.socket.destroy();
  };

  private readonly onRequestTimeout = (): void => {
    this.requestTimer = null;
    // As Node answers a request that did not arrive in time.
    const body = JSON.stringify({ errcode: "M_UNKNOWN", error: "Request not received in time" });
    this.socket.write(`HTTP/1.1 408 ${STATUS_CODES[408]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    this.shut();
    setTimeout(() => this.socket.destroy(), 1_000).unref(); // a client that does not read it
  };
}

/** Puts the front before `server`'s own handling of new connections (plain HTTP only). */
export class TransactionFront {
  private readonly connections = new Set<FrontConnection>();

  constructor(
    server: Server,
    private readonly handlers: FrontHandlers,
    private readonly limits: FrontLimits,
  ) {
    const nodeListeners = server.listeners("connection") as ((socket: Socket) => void)[];
    server.removeAllListeners("connection");
    const handOverTo = (socket: Socket) => {
      for (const listener of nodeListeners) listener.call(server, socket);
    };
    server.on("connection", (socket: Socket) => {
      const conn = new FrontConnection(socket, this.handlers, this.limits, handOverTo, (c) => this.connections.delete(c));
      this.connections.add(conn);
    });
  }

  /** Closes the connections the front still holds (idle ones at once, busy ones after their answer). */
  closeConnections(): void {
    for (const conn of this.connections) conn.close();
  }
}
