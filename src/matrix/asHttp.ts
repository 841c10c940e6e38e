/**
 * The HTTP layer of the appservice port, hardened: every request the homeserver (or anyone
 * else) can send gets a prompt JSON Matrix error when it is not what the API expects, from
 * the socket up. Node answers requests it cannot parse (bad request line, headers too large,
 * a body that never finishes) itself, with a bare status and no body; `answerClientError`
 * makes those Matrix errors too, and the server's timeouts cut off stalled requests.
 */
import { readFileSync } from "node:fs";
import { createServer, STATUS_CODES, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Duplex } from "node:stream";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import { getLogger } from "../logging.js";
import { sendMatrixError } from "./httpErrors.js";

const log = getLogger("matrix/appservice");

/**
 * Synapse sends at most 100 events of at most 64 KiB each, plus ephemeral events: 10 MB
 * leaves room for that, and refuses anything larger before reading it (Content-Length) or as
 * soon as it passes the limit (chunked).
 */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;
/** A request (headers and body) must arrive within this; a stalled one gets 408 and is closed. */
export const REQUEST_TIMEOUT_MS = 15_000;
const HEADERS_TIMEOUT_MS = 10_000;
/** Node's limit on a request's head; the transaction front (TransactionFront.ts) uses the same. */
export const MAX_HEADER_BYTES = 16 * 1024;

/** Refuses with a Matrix error and closes the connection (whatever is still coming is not read). */
function refuse(res: ServerResponse, status: number, errcode: string, error: string): void {
  res.setHeader("Connection", "close");
  sendMatrixError(res, status, errcode, error);
}

/**
 * Reads a JSON body into `req.body` (any JSON value: the route says what is wrong with it).
 * Our own reader rather than body-parser, which refuses an oversized or unreadable body only
 * after reading it to the end: a body announced as 50 MB and never sent held the answer
 * until the connection died. Here a refusal is sent at once, and the connection closed.
 */
export function jsonBody(maxBytes = MAX_BODY_BYTES): RequestHandler {
  return (req, res, next) => {
    if (!req.is("application/json")) return refuse(res, 400, "M_NOT_JSON", "Content-Type must be application/json");
    const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(req.headers["content-type"] ?? "")?.[1];
    if (charset && !/^utf-?8$/i.test(charset)) return refuse(res, 415, "M_NOT_JSON", "Only UTF-8 JSON is accepted");
    const encoding = req.headers["content-encoding"];
    if (encoding && encoding.toLowerCase() !== "identity") return refuse(res, 415, "M_NOT_JSON", "Content-Encoding is not supported; send plain JSON");
    if (Number(req.headers["content-length"] ?? 0) > maxBytes) return refuse(res, 413, "M_TOO_LARGE", "Request body is too large");
    readJsonBody(req, res, maxBytes, (body) => {
      req.body = body;
      next();
    });
  };
}

/** A Content-Type `jsonBody` accepts as it is, with nothing to refuse: JSON, UTF-8 if a charset is named. */
export const PLAIN_JSON = /^application\/json(?:\s*;\s*charset\s*=\s*(?:utf-?8|"utf-?8"))?$/i;

/**
 * Whether `jsonBody` would take this request's body as it is (a JSON type, UTF-8, no encoding,
 * a Content-Length within `maxBytes`): a route served without express checks this first, and
 * leaves anything else to express, whose answers to odd requests stay the only ones.
 */
export function isPlainJsonRequest(req: IncomingMessage, maxBytes = MAX_BODY_BYTES): boolean {
  const { headers } = req;
  const length = headers["content-length"];
  if (length === undefined || headers["transfer-encoding"] !== undefined) return false;
  if (headers["content-encoding"] !== undefined && headers["content-encoding"].toLowerCase() !== "identity") return false;
  return PLAIN_JSON.test(headers["content-type"] ?? "") && Number(length) <= maxBytes;
}

/** Reads and parses a body whose headers were checked; refuses (and closes) what is too large or not UTF-8 JSON. */
export function readJsonBody(req: IncomingMessage, res: ServerResponse, maxBytes: number, onJson: (body: unknown) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  const finish = (then: () => void) => {
    if (done) return;
    done = true;
    req.off("data", onData);
    then();
  };
  const onData = (chunk: Buffer) => {
    size += chunk.length;
    if (size > maxBytes) finish(() => refuse(res, 413, "M_TOO_LARGE", "Request body is too large"));
    else chunks.push(chunk);
  };
  req.on("data", onData);
  req.on("error", () => finish(() => refuse(res, 400, "M_BAD_JSON", "Request body was not received")));
  req.on("close", () => finish(() => res.destroy()));
  req.on("end", () =>
    finish(() => {
      let body: unknown;
      try {
        body = JSON.parse(utf8.decode(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
      } catch {
        return refuse(res, 400, "M_NOT_JSON", "Request body is not valid JSON");
      }
      onJson(body);
    }),
  );
}

/** Strict: a body that is not valid UTF-8 is refused, not decoded with replacement characters. */
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Last handlers of the app: a JSON 404 for unknown paths, and a JSON error for every failure. */
export function finalHandlers(): [RequestHandler, (err: Error & { status?: number; type?: string }, req: Request, res: Response, next: NextFunction) => void] {
  return [
    (_req, res) => sendMatrixError(res, 404, "M_UNRECOGNIZED", "Unrecognized request"),
    (err, _req, res, _next) => {
      if (res.headersSent) return void res.end();
      // Express's own 4xx: a path parameter that is not valid percent-encoding, mostly.
      if (err instanceof URIError || (err.status && err.status >= 400 && err.status < 500)) {
        return sendMatrixError(res, err.status && err.status < 500 ? err.status : 400, "M_INVALID_PARAM", "Malformed request path");
      }
      log.error("HTTP handler failed", { error: err.message });
      sendMatrixError(res, 500, "M_UNKNOWN", "Internal error");
    },
  ];
}

/** Node's error codes for requests it could not parse or that took too long → status and Matrix error. */
function clientErrorAnswer(code: string | undefined): [number, string, string] {
  if (code === "ERR_HTTP_REQUEST_TIMEOUT") return [408, "M_UNKNOWN", "Request not received in time"];
  if (code === "HPE_HEADER_OVERFLOW") return [431, "M_TOO_LARGE", "Request headers are too large"];
  return [400, "M_UNRECOGNIZED", "Malformed HTTP request"];
}

/** Answers a request Node could not parse (or that timed out) with a JSON Matrix error, then closes. */
export function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  const [status, errcode, error] = clientErrorAnswer(err.code);
  const body = JSON.stringify({ errcode, error });
  const busy = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
  if (socket.writable && !busy) {
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  setTimeout(() => socket.destroy(), 1_000).unref();
}

/**
 * An HTTP server for the app with timeouts that cut off slow requests within seconds (HTTPS
 * when MATRIX_AS_TLS_KEY and MATRIX_AS_TLS_CERT name files, as the library's listener allowed).
 */
export function createAsServer(app: RequestListener): Server {
  // Timeouts are checked every 5 s (a timer wakeup each time, idle or not): a stalled request is cut within 15-20 s.
  const options = { requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: HEADERS_TIMEOUT_MS, connectionsCheckingInterval: 5_000, maxHeaderSize: MAX_HEADER_BYTES };
  const { MATRIX_AS_TLS_KEY: key, MATRIX_AS_TLS_CERT: cert } = process.env;
  const server = key && cert ? createHttpsServer({ ...options, key: readFileSync(key), cert: readFileSync(cert) }, app) : createServer(options, app);
  server.on("clientError", answerClientError);
  return server;
}
