/**
 * The appservice HTTP listener, built on matrix-appservice's AppService so that the
 * library's Bridge (intents, membership caches, alias and user queries) works as usual,
 * with these changes:
 *
 * - A transaction is written to the store's journal BEFORE it is acknowledged, and each of
 *   its events is removed from the journal once the bridge has handled it. Events left in the
 *   journal by a crash are replayed at the next start, so nothing Synapse was told
 *   "received" is lost.
 * - A transaction ID already journalled is answered 200 without being handled again, also
 *   across restarts (the library remembers only the last ID, in memory).
 * - The library's express app (lenient body parsing, legacy routes answering 308, errors as
 *   500 or HTML) is replaced by one of our own: every malformed request gets a prompt 4xx with a
 *   JSON Matrix error (asHttp.ts for the HTTP layer, transactionBody.ts for the body), unknown
 *   routes a 404 and wrong methods a 405 M_UNRECOGNIZED, stalled requests a 408.
 * - `POST /_matrix/app/v1/ping` is answered (the library does not).
 * - Alias and user queries go to handlers that say whether the alias or user now exists:
 *   200 or 404 M_NOT_FOUND (the library answers 200 even when its handler fails).
 */
import { noteEventReceived, now as relayClock } from "../metrics/relayTiming.js";
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { Server as HttpsServer } from "node:https";
import { promisify } from "node:util";
import express, { type Application, type Request, type Response } from "express";
import { AppService } from "matrix-appservice";
import type { DataStore } from "../store/DataStore.js";
import { getLogger } from "../logging.js";
import { metrics, relayMetrics } from "../metrics/metrics.js";
import { createAsServer, finalHandlers, isPlainJsonRequest, jsonBody, MAX_BODY_BYTES, MAX_HEADER_BYTES, readJsonBody, REQUEST_TIMEOUT_MS } from "./asHttp.js";
import { TransactionFront, type TransactionAnswer } from "./TransactionFront.js";
import { sendMatrixError } from "./httpErrors.js";
import { checkTxnId, isObject, readTransaction, type MatrixEvent } from "./transactionBody.js";

const log = getLogger("matrix/appservice");

export type { MatrixEvent };
/** Handles one event; resolves once it is bridged or its sender was told why not. */
export type EventSink = (event: MatrixEvent) => Promise<void>;
/** Answers an alias or user query: true once it exists (created if need be), false if it never will. */
export type ExistenceQuery = (id: string) => Promise<boolean>;

const TXN_PATH = "/_matrix/app/v1/transactions/:txnId";
const TXN_PREFIX = "/_matrix/app/v1/transactions/";
/** A path segment that needs no decoding and ends the path (no query, no escapes, no slash). */
const PLAIN_SEGMENT = /^[A-Za-z0-9._~=+:@-]+$/;

/** The token of an `Authorization: Bearer` header. */
function bearerToken(header: string | undefined): string | undefined {
  return header?.startsWith("Bearer ") ? header.slice(7) : undefined;
}

const EMPTY_JSON = Buffer.from("{}");
/** Answers a transaction through Node's response (once: a late failure after the answer is dropped). */
function answerWith(res: ServerResponse): TransactionAnswer {
  return {
    ok: () => {
      if (res.headersSent) return;
      res.writeHead(200, { "Content-Type": "application/json; charset=utf-8", "Content-Length": EMPTY_JSON.length });
      res.end(EMPTY_JSON); // no ETag: nobody caches it
    },
    fail: (status, errcode, error) => {
      if (!res.headersSent) sendMatrixError(res, status, errcode, error);
    },
  };
}

/** The homeserver's ping (`POST /_matrix/app/v1/ping`): a JSON object body is all it needs. */
function answerPing(body: unknown, answer: TransactionAnswer): void {
  if (isObject(body)) answer.ok();
  else answer.fail(400, "M_BAD_JSON", "The body must be a JSON object");
}

/** The front's limits are the Node server's (asHttp.ts); idle keep-alive connections last a minute. */
const FRONT_LIMITS = { maxHeaderBytes: MAX_HEADER_BYTES, maxBodyBytes: MAX_BODY_BYTES, requestTimeoutMs: REQUEST_TIMEOUT_MS, idleTimeoutMs: 60_000 };
/** Unprefixed paths of old homeservers: not served (the library answered them with 308). */
const LEGACY_PATHS = ["/transactions/:txnId", "/users/:userId", "/rooms/:alias"];

/** Where the listener's work goes: given at construction, so nothing can run before it is wired. */
export interface AppServiceHandlers {
  /** Handles each journalled event. */
  sink: EventSink;
  aliasQuery: ExistenceQuery;
  userQuery: ExistenceQuery;
  /** What of an event goes into the journal (secrets, such as passwords, are left out). */
  journalCopy(event: MatrixEvent): MatrixEvent;
  /**
   * Events the sink ignores (those of the bridge's own users: the echoes of what it sent into
   * Matrix, one per IRC line). They still feed the library's caches, but are neither journalled
   * nor handed to the sink: a journal entry and its done mark per IRC line were half of the
   * journal's writes, for nothing.
   */
  ignored?(event: MatrixEvent): boolean;
}

/**
 * Thrown by a handler that could not finish because the bridge is stopping: the event stays in
 * the journal (it is not marked handled) and is handled again at the next start.
 */
export class KeepInJournal extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "KeepInJournal";
  }
}

/** Event IDs dispatched by this process, remembered to drop a second copy (live and replayed). */
const DISPATCHED_MEMORY = 20_000;

export class DurableAppService extends AppService {
  private readonly sink: EventSink;
  private readonly aliasQuery: ExistenceQuery;
  private readonly userQuery: ExistenceQuery;
  private readonly journalCopy: (event: MatrixEvent) => MatrixEvent;
  private readonly ignored: (event: MatrixEvent) => boolean;
  private readonly dispatched = new Set<string>();
  private readonly inFlightTxns = new Map<string, Promise<void>>();
  /** Events being handled, with when each was dispatched (insertion order: the oldest first). */
  private readonly handling = new Map<Promise<void>, number>();
  private httpServer: Server | null = null;
  private front: TransactionFront | null = null;
  private readonly hsTokenBytes: Buffer;
  private readonly tokenScratch: Buffer;

  constructor(
    private readonly hsToken: string,
    private readonly store: DataStore,
    handlers: AppServiceHandlers,
  ) {
    super({ homeserverToken: hsToken });
    this.hsTokenBytes = Buffer.from(hsToken);
    this.tokenScratch = Buffer.alloc(this.hsTokenBytes.length);
    this.sink = handlers.sink;
    this.aliasQuery = handlers.aliasQuery;
    this.userQuery = handlers.userQuery;
    this.journalCopy = handlers.journalCopy;
    this.ignored = handlers.ignored ?? (() => false);
    (this as { app: Application }).app = this.buildApp();
  }

  /**
   * Our routes on a fresh express app, in place of the library's (its constructor binds them
   * to a lenient app we cannot reconfigure). The Bridge adds its paths to `expressApp` later.
   */
  private buildApp(): Application {
    const app = express();
    app.disable("x-powered-by");
    app.set("query parser", "simple"); // no nested objects from `?a[b]=c`
    app.set("case sensitive routing", true); // Matrix paths are case-sensitive
    const auth = (req: Request, res: Response, next: () => void) => (this.checkToken(req, res) ? next() : undefined);
    const body = jsonBody();
    const onlyMethods = (methods: string) => (_req: Request, res: Response) => {
      res.setHeader("Allow", methods);
      sendMatrixError(res, 405, "M_UNRECOGNIZED", "Method not allowed on this path");
    };
    app.put(TXN_PATH, auth, body, (req, res) => this.serveTransaction(req.params.txnId, req.body, answerWith(res)));
    app.all(TXN_PATH, onlyMethods("PUT"));
    app.get("/_matrix/app/v1/users/:userId", (req, res) => void this.answerQuery(req, res, this.userQuery, req.params.userId));
    app.get("/_matrix/app/v1/rooms/:alias", (req, res) => void this.answerQuery(req, res, this.aliasQuery, req.params.alias));
    app.post("/_matrix/app/v1/ping", auth, body, (req, res) => answerPing(req.body, answerWith(res)));
    app.all("/_matrix/app/v1/ping", onlyMethods("POST"));
    app.all(LEGACY_PATHS, (_req, res) => sendMatrixError(res, 404, "M_UNRECOGNIZED", "Unprefixed appservice paths are not supported; use /_matrix/app/v1"));
    return app;
  }

  /**
   * Takes a transaction straight from Node's server, without express, when nothing about it
   * needs more than the plain path: `PUT` on the exact path (no query, no escapes), a plain JSON
   * body and the right token in the header. That is every transaction Synapse sends, one per
   * relayed message at a steady rate, and express's routing, middleware and answer (ETag
   * included) were a fifth of relaying one (see bench/relayCost.ts). Anything else, odd or
   * wrong, goes to the express app, whose answers (4xx with their Matrix codes) stay the only ones.
   */
  private readonly route = (req: IncomingMessage, res: ServerResponse): void => {
    const txnId = req.method === "PUT" && req.url?.startsWith(TXN_PREFIX) ? req.url.slice(TXN_PREFIX.length) : null;
    if (txnId && PLAIN_SEGMENT.test(txnId) && isPlainJsonRequest(req) && this.tokenMatches(bearerToken(req.headers.authorization))) {
      readJsonBody(req, res, MAX_BODY_BYTES, (body) => this.serveTransaction(txnId, body, answerWith(res)));
      return;
    }
    this.expressApp(req, res);
  };

  /** Listens with our own server: request timeouts, and JSON errors for requests Node cannot parse. */
  override listen(port: number, hostname: string, backlog: number, callback?: () => void): Promise<void> | undefined {
    const server = createAsServer(this.route);
    this.httpServer = server;
    if (!(server instanceof HttpsServer)) {
      const serve = (txnId: string, body: unknown, answer: TransactionAnswer, shallow: boolean) => this.serveTransaction(txnId, body, answer, shallow);
      this.front = new TransactionFront(server, { tokenMatches: (token) => this.tokenMatches(token), serve, ping: answerPing }, FRONT_LIMITS);
      // A connection Node took over from the front for an odd request ends after this many, so
      // the homeserver's next connection comes to the front again.
      server.maxRequestsPerSocket = 100;
    }
    const listening = new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, hostname, backlog, () => {
        server.off("error", reject);
        resolve();
        callback?.();
      });
    });
    return callback ? undefined : listening;
  }

  override async close(): Promise<void> {
    if (!this.httpServer) throw new Error("Server has not started");
    const server = this.httpServer;
    server.closeIdleConnections();
    this.front?.closeConnections();
    await promisify(server.close.bind(server))();
  }

  /**
   * Adds the handlers that must come after every route: a JSON error for bodies that do not
   * parse, and a JSON 404 for unknown paths. Call once all routes are registered.
   */
  finishRoutes(): void {
    const [notFound, onError] = finalHandlers();
    this.expressApp.use(notFound);
    this.expressApp.use(onError);
  }

  /** Answers an alias or user query from the homeserver with 200, 404 or 500. */
  async answerQuery(req: Request, res: Response, query: ExistenceQuery, id: string | undefined): Promise<void> {
    if (!this.checkToken(req, res)) return;
    try {
      if (id && (await query(id))) res.json({});
      else sendMatrixError(res, 404, "M_NOT_FOUND", `${id ?? "it"} is not handled by this bridge`);
    } catch (err) {
      log.error("Query failed", { id, error: (err as Error).message });
      sendMatrixError(res, 500, "M_UNKNOWN", "The bridge could not answer the query");
    }
  }

  /** Answers 401/403 itself and returns false when the request is not from the homeserver. */
  private checkToken(req: Request, res: Response): boolean {
    const query = req.query.access_token;
    const given = bearerToken(req.headers.authorization) ?? (typeof query === "string" ? query : undefined);
    if (!given) {
      sendMatrixError(res, 401, "M_UNAUTHORIZED", "Missing homeserver token");
      return false;
    }
    if (!this.tokenMatches(given)) {
      sendMatrixError(res, 403, "M_FORBIDDEN", "Bad homeserver token");
      return false;
    }
    return true;
  }

  /** Compared in constant time, through a buffer kept for it (no allocation per request). */
  private tokenMatches(given: string | undefined): boolean {
    if (given === undefined || Buffer.byteLength(given) !== this.hsTokenBytes.length) return false;
    this.tokenScratch.write(given);
    return timingSafeEqual(this.tokenScratch, this.hsTokenBytes);
  }

  /** Handles a transaction whose sender is checked; a failure is a 500, the transaction resent. */
  private serveTransaction(txnId: string, body: unknown, answer: TransactionAnswer, shallow = false): void {
    this.handleTransaction(txnId, body, answer, shallow).catch((err: Error) => {
      log.error("Transaction handling failed", { error: err.message });
      answer.fail(500, "M_UNKNOWN", "Internal error"); // ignored when already answered
    });
  }

  async handleTransaction(txnId: string, body: unknown, answer: TransactionAnswer, shallow = false): Promise<void> {
    const arrived = relayClock();
    const txn = checkTxnId(txnId) ?? readTransaction(body, shallow);
    if ("errcode" in txn) {
      metrics.transactions.inc({ result: "refused" });
      log.warn("Refused a malformed transaction", { txnId: txnId.slice(0, 64), error: txn.error });
      return answer.fail(400, txn.errcode, txn.error);
    }
    const { events, ephemeral } = txn;
    for (const event of events) noteEventReceived(event, arrived);

    const earlier = this.inFlightTxns.get(txnId);
    if (earlier) await earlier.catch(() => undefined);
    if (await this.store.hasTransaction(txnId)) {
      metrics.transactions.inc({ result: "duplicate" });
      return answer.ok();
    }
    const handled = events.filter((e) => !this.ignored(e));
    // A transaction with nothing to handle (echoes, typing) is not written at all: a resend of it
    // would only feed the caches again, which is harmless.
    const journalled = handled.length === 0 ? Promise.resolve() : this.store.recordTransaction(txnId, handled.map((e) => this.journalCopy(e)));
    this.inFlightTxns.set(txnId, journalled);
    try {
      await journalled;
    } catch (err) {
      // Not acknowledged: Synapse keeps the transaction and sends it again.
      log.error("Could not journal a transaction; asking the homeserver to retry", { txnId, error: (err as Error).message });
      metrics.transactions.inc({ result: "failed" });
      return answer.fail(500, "M_UNKNOWN", "Could not store the transaction; retry later");
    } finally {
      this.inFlightTxns.delete(txnId);
    }
    answer.ok();
    relayMetrics.transactionsAccepted.inc();
    let seq = 0;
    for (const event of events) {
      if (seq < handled.length && handled[seq] === event) this.dispatch(txnId, seq++, event);
      else this.feedCaches(event);
    }
    for (const event of ephemeral) this.emit("ephemeral", event);
  }

  /** Hands journalled events to the bridge again, oldest first (after a crash or restart). */
  async replayJournal(): Promise<number> {
    const pending = await this.store.getPendingEvents();
    if (pending.length > 0) log.info("Replaying events acknowledged before the last stop", { count: pending.length });
    for (const { txnId, seq, event } of pending) this.dispatch(txnId, seq, event);
    return pending.length;
  }

  /**
   * The library's Bridge keeps its membership and power-level caches (which its intents read)
   * from these, and from nothing else: every other event it was given went through its request
   * factory, queue and logging only to reach our no-op controller, once per relayed message.
   */
  private feedCaches(event: MatrixEvent): void {
    if (event.type === "m.room.member" || event.type === "m.room.power_levels") this.emit("event", event);
  }

  private dispatch(txnId: string, seq: number, event: MatrixEvent): void {
    this.feedCaches(event);
    // A live copy of an event being replayed (or the reverse) is done once: the other is dropped.
    const eventId = typeof event.event_id === "string" ? event.event_id : null;
    if (eventId && this.dispatched.has(eventId)) {
      log.info("Dropped a second copy of an event", { eventId, txnId });
      void this.store.markEventDone(txnId, seq).catch(() => undefined);
      return;
    }
    if (eventId) {
      this.dispatched.add(eventId);
      if (this.dispatched.size > DISPATCHED_MEMORY) this.dispatched.delete(this.dispatched.values().next().value as string);
    }
    let keep = false;
    const done: Promise<void> = this.sink(event)
      .catch((err: Error) => {
        if (err instanceof KeepInJournal) keep = true;
        else log.error("Event handler failed", { eventId: event.event_id, error: err.message, stack: err.stack });
      })
      .then(async () => {
        if (!keep) return this.store.markEventDone(txnId, seq);
        log.info("Event left in the journal for the next start", { eventId: event.event_id });
      })
      .catch((err: Error) => {
        log.error("Could not mark an event handled", { txnId, seq, error: err.message });
      })
      .finally(() => this.handling.delete(done));
    this.handling.set(done, Date.now());
  }

  /** Waits (bounded) for events being handled; whatever is unfinished is replayed next start. */
  async drain(timeoutMs: number): Promise<void> {
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref());
    await Promise.race([Promise.allSettled([...this.handling.keys()]), timeout]);
  }

  /** How many journalled events are being handled, and since when the oldest (for /ready and metrics). */
  pendingEvents(): { pending: number; oldestSince: number | null } {
    const oldest = this.handling.values().next();
    return { pending: this.handling.size, oldestSince: oldest.done ? null : oldest.value };
  }
}
