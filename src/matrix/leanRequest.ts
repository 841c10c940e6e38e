/**
 * The bot SDK's HTTP calls, made with Node's own `http`/`https` and one keep-alive agent per
 * protocol, instead of the deprecated `request` library the SDK ships with. Every message the
 * bridge sends into Matrix is such a call; `request` built a large object graph for each
 * (see bench/relayCost.ts: it was a fifth of the bridge's CPU for an IRC line).
 *
 * It takes the subset of `request`'s options the SDK passes (uri, method, qs, headers, body,
 * timeout, encoding) and answers as `request` does: `callback(err, response, body)`, the body
 * a string, or a Buffer when `encoding` is null. GET and HEAD follow up to 5 redirects, as
 * `request` did by default, never from https to http, and without the Authorization header to
 * another host. `timeout` bounds the whole call (a body trickling in included): past it, the
 * call fails with ETIMEDOUT, which the retry logic knows. Answers over 100 MiB are refused.
 */
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { RawJsonClient, Reframe } from "./RawJsonClient.js";

export interface RequestParams {
  uri: string;
  method?: string;
  qs?: Record<string, unknown> | null;
  headers?: Record<string, string>;
  body?: string | Buffer;
  timeout?: number;
  /** undefined: the body as a UTF-8 string; null: as a Buffer. */
  encoding?: null | undefined | string;
}

export interface LeanResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: string | Buffer;
}

export type RequestCallback = (err: Error | null, response: LeanResponse | undefined, body: string | Buffer | undefined) => void;

const MAX_REDIRECTS = 5;
const MAX_BODY_BYTES = 100 * 1024 * 1024;
const agents = {
  "http:": new HttpAgent({ keepAlive: true, maxSockets: 64 }),
  "https:": new HttpsAgent({ keepAlive: true, maxSockets: 64 }),
};

/** The URL with `qs` appended (arrays repeat the key, null is an empty value, undefined is left out). */
export function urlWithQuery(uri: string, qs: Record<string, unknown> | null | undefined): URL {
  const url = new URL(uri);
  for (const [key, value] of Object.entries(qs ?? {})) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(key, v === null ? "" : String(v));
  }
  return url;
}

function timeoutError(): Error {
  return Object.assign(new Error("ETIMEDOUT"), { code: "ETIMEDOUT" });
}

/** The request to follow a redirect to `location`, or an Error saying why not. */
export function redirected(params: RequestParams, from: URL, location: string): RequestParams | Error {
  const to = new URL(location, from);
  if (from.protocol === "https:" && to.protocol !== "https:") return new Error(`refused a redirect from https to ${to.protocol}`);
  const headers = { ...(params.headers ?? {}) };
  if (to.host !== from.host) for (const name of Object.keys(headers)) if (name.toLowerCase() === "authorization") delete headers[name];
  return { ...params, uri: to.toString(), qs: null, headers };
}

export function leanRequest(params: RequestParams, callback: RequestCallback, redirects = 0): void {
  let url: URL;
  try {
    url = urlWithQuery(params.uri, params.qs);
  } catch (err) {
    return callback(err as Error, undefined, undefined);
  }
  const method = (params.method ?? "GET").toUpperCase();
  const body = params.body === undefined ? undefined : Buffer.isBuffer(params.body) ? params.body : Buffer.from(params.body, "utf8");
  const headers: Record<string, string | number> = { ...(params.headers ?? {}) };
  if (body) headers["Content-Length"] = body.length;
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  const agent = agents[url.protocol as "http:" | "https:"];
  if (!agent) return callback(new Error(`unsupported protocol ${url.protocol}`), undefined, undefined);
  let settled = false;
  let deadline: NodeJS.Timeout | null = null;
  const finish = (err: Error | null, response?: LeanResponse) => {
    if (settled) return;
    settled = true;
    if (deadline) clearTimeout(deadline);
    callback(err, response, response?.body);
  };
  const req = send(url, { method, headers, agent }, (res: IncomingMessage) => {
    const location = res.headers.location;
    if (location && res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && (method === "GET" || method === "HEAD") && redirects < MAX_REDIRECTS) {
      res.resume();
      const next = redirected(params, url, location);
      if (next instanceof Error) return finish(next);
      settled = true;
      if (deadline) clearTimeout(deadline);
      return leanRequest(next, callback, redirects + 1);
    }
    readAnswer(req, res, (err, raw) => {
      if (err || !raw) return finish(err);
      finish(null, { statusCode: res.statusCode ?? 0, headers: res.headers, body: params.encoding === null ? raw : raw.toString("utf8") });
    });
  });
  if (params.timeout) deadline = setTimeout(() => req.destroy(timeoutError()), params.timeout);
  req.on("error", (err) => finish(err));
  req.end(body);
}

/** Where `jsonRequest` sends: parsed once per homeserver URL and token, not per call. */
export interface JsonTarget {
  https: boolean;
  hostname: string;
  port: number;
  /** The homeserver URL's own path, if it has one (no trailing slash). */
  base: string;
  /** Authorization and Content-Type, shared by every call to this target. */
  headers: Record<string, string>;
  /** Plain HTTP with headers that are safe as they are: calls go through RawJsonClient first. */
  raw: { client: RawJsonClient; headers: string } | null;
}

/** Header values and request targets the raw client writes as they are (no CR, LF, spaces or controls). */
const PLAIN_HEADER_VALUE = /^[\x20-\x7e]*$/;
const PLAIN_PATH = /^\/[\x21-\x7e]*$/;

export function jsonTarget(homeserverUrl: string, accessToken: string): JsonTarget {
  const url = new URL(homeserverUrl);
  const https = url.protocol === "https:";
  if (!https && url.protocol !== "http:") throw new Error(`unsupported protocol ${url.protocol}`);
  const hostname = url.hostname.replace(/^\[|\]$/g, "");
  const port = url.port ? Number(url.port) : https ? 443 : 80;
  const headers = { Authorization: `Bearer ${accessToken}`, "Content-Type": "application/json" };
  const plain = !https && Object.values(headers).every((v) => PLAIN_HEADER_VALUE.test(v));
  const raw = plain ? { client: rawClientFor(hostname, port), headers: Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("") } : null;
  return { https, hostname, port, base: url.pathname.replace(/\/+$/, ""), headers, raw };
}

export type JsonCallback = (err: Error | null, statusCode: number, headers: IncomingHttpHeaders | undefined, body: string) => void;

/**
 * The hot path's call (a ghost's message into a room): one request with a path built by the
 * caller and headers built once per target, on the same keep-alive agents as leanRequest, with
 * no URL object, query building or redirects. `timeoutMs` bounds the whole call, as in leanRequest.
 */
export function jsonRequest(target: JsonTarget, method: string, path: string, body: string, timeoutMs: number, callback: JsonCallback): void {
  const payload = Buffer.from(body, "utf8");
  let settled = false;
  const finish = (err: Error | null, status = 0, headers?: IncomingHttpHeaders, text = "") => {
    if (settled) return;
    settled = true;
    clearTimeout(deadline);
    callback(err, status, headers, text);
  };
  let cancel: (err: Error) => void = () => undefined;
  const deadline = setTimeout(() => cancel(timeoutError()), timeoutMs);
  const fullPath = target.base + path;
  if (target.raw?.client.usable && PLAIN_PATH.test(fullPath)) {
    cancel = target.raw.client.request(method, fullPath, target.raw.headers, payload, (err, answer) => {
      if (err instanceof Reframe) return nodeJsonRequest(target, method, payload, fullPath, finish, (c) => (cancel = c));
      if (err || !answer) return finish(err ?? new Error("no answer"));
      finish(null, answer.status, answer.headers as IncomingHttpHeaders, answer.body);
    });
    return;
  }
  nodeJsonRequest(target, method, payload, fullPath, finish, (c) => (cancel = c));
}

/** jsonRequest through Node's client (HTTPS, odd paths, and answers the raw client does not read). */
function nodeJsonRequest(target: JsonTarget, method: string, payload: Buffer, path: string, finish: (err: Error | null, status?: number, headers?: IncomingHttpHeaders, text?: string) => void, setCancel: (cancel: (err: Error) => void) => void): void {
  const options = {
    method,
    hostname: target.hostname,
    port: target.port,
    path,
    headers: { ...target.headers, "Content-Length": payload.length },
    agent: target.https ? agents["https:"] : agents["http:"],
  };
  const req = (target.https ? httpsRequest : httpRequest)(options, (res: IncomingMessage) => {
    readAnswer(req, res, (err, raw) => (err || !raw ? finish(err) : finish(null, res.statusCode ?? 0, res.headers, raw.toString("utf8"))));
  });
  setCancel((err) => req.destroy(err));
  req.on("error", (err) => finish(err));
  req.end(payload);
}

/** Reads a whole answer's body; one over MAX_BODY_BYTES fails the request. */
function readAnswer(req: ClientRequest, res: IncomingMessage, done: (err: Error | null, body?: Buffer) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  res.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return void req.destroy(new Error(`the answer is over ${MAX_BODY_BYTES} bytes`));
    chunks.push(chunk);
  });
  res.on("error", (err) => done(err));
  res.on("end", () => done(null, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
}

const rawClients = new Map<string, RawJsonClient>();
/** One raw client (with its idle sockets) per homeserver host and port, shared by every token. */
function rawClientFor(hostname: string, port: number): RawJsonClient {
  const key = `${hostname}:${port}`;
  let client = rawClients.get(key);
  if (!client) rawClients.set(key, (client = new RawJsonClient(hostname, port)));
  return client;
}
