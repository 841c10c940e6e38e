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
 * - Malformed requests get a 4xx with a Matrix error code; missing routes a 404 M_UNRECOGNIZED.
 * - `POST /_matrix/app/v1/ping` is answered (the library does not).
 * - Alias and user queries go to handlers that say whether the alias or user now exists:
 *   200 or 404 M_NOT_FOUND (the library answers 200 even when its handler fails).
 */
import { timingSafeEqual } from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import { AppService } from "matrix-appservice";
import type { DataStore } from "../store/DataStore.js";
import { getLogger } from "../logging.js";
import { metrics } from "../metrics/metrics.js";
import { sendMatrixError } from "./httpErrors.js";

const log = getLogger("matrix/appservice");

export type MatrixEvent = Record<string, unknown> & { type?: string; room_id?: string; event_id?: string };
/** Handles one event; resolves once it is bridged or its sender was told why not. */
export type EventSink = (event: MatrixEvent) => Promise<void>;
/** Answers an alias or user query: true once it exists (created if need be), false if it never will. */
export type ExistenceQuery = (id: string) => Promise<boolean>;

function isEventList(value: unknown): value is MatrixEvent[] {
  return Array.isArray(value) && value.every((e) => typeof e === "object" && e !== null && !Array.isArray(e));
}

export class DurableAppService extends AppService {
  private sink: EventSink | null = null;
  aliasQuery: ExistenceQuery = async () => false;
  /** What of an event goes into the journal (secrets, such as passwords, are left out). */
  journalCopy: (event: MatrixEvent) => MatrixEvent = (event) => event;
  userQuery: ExistenceQuery = async () => false;
  private readonly inFlightTxns = new Map<string, Promise<void>>();
  private readonly handling = new Set<Promise<void>>();

  constructor(
    private readonly hsToken: string,
    private readonly store: DataStore,
  ) {
    super({ homeserverToken: hsToken });
    this.expressApp.post("/_matrix/app/v1/ping", (req, res) => {
      if (this.checkToken(req, res)) res.json({});
    });
  }

  /** Where events go once journalled. Until it is set, events wait in the journal. */
  setSink(sink: EventSink): void {
    this.sink = sink;
  }

  /**
   * Adds the handlers that must come after every route: a JSON error for bodies that do not
   * parse, and a JSON 404 for unknown paths. Call once all routes are registered.
   */
  finishRoutes(): void {
    this.expressApp.use((_req: Request, res: Response) => sendMatrixError(res, 404, "M_UNRECOGNIZED", "Unrecognized request"));
    this.expressApp.use((err: Error & { status?: number; type?: string }, _req: Request, res: Response, _next: NextFunction) => {
      if (err.type === "entity.parse.failed") return sendMatrixError(res, 400, "M_NOT_JSON", "Request body is not valid JSON");
      if (err.type === "entity.too.large") return sendMatrixError(res, 413, "M_TOO_LARGE", "Request body is too large");
      log.error("HTTP handler failed", { error: err.message });
      sendMatrixError(res, err.status && err.status < 500 ? err.status : 500, "M_UNKNOWN", "Internal error");
    });
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
    const header = req.headers.authorization;
    const given = header?.startsWith("Bearer ") ? header.slice(7) : (req.query.access_token as string | undefined);
    if (!given) {
      sendMatrixError(res, 401, "M_UNAUTHORIZED", "Missing homeserver token");
      return false;
    }
    const a = Buffer.from(given);
    const b = Buffer.from(this.hsToken);
    if (a.length !== b.length || !timingSafeEqual(a, b)) {
      sendMatrixError(res, 403, "M_FORBIDDEN", "Bad homeserver token");
      return false;
    }
    return true;
  }

  async handleTransaction(req: Request, res: Response): Promise<void> {
    if (!this.checkToken(req, res)) return;
    const txnId = req.params.txnId;
    const body = req.body as Record<string, unknown> | undefined;
    if (!body || typeof body !== "object" || Array.isArray(body)) {
      return sendMatrixError(res, 400, "M_NOT_JSON", "Expected a JSON object body");
    }
    const events = body.events ?? [];
    if (!isEventList(events)) return sendMatrixError(res, 400, "M_BAD_JSON", "'events' must be an array of objects");
    const ephemeral = body["de.sorunome.msc2409.ephemeral"] ?? body.ephemeral ?? [];

    const earlier = this.inFlightTxns.get(txnId);
    if (earlier) await earlier.catch(() => undefined);
    if (await this.store.hasTransaction(txnId)) {
      metrics.transactions.inc({ result: "duplicate" });
      res.json({});
      return;
    }
    const journalled = this.store.recordTransaction(txnId, events.map((e) => this.journalCopy(e)));
    this.inFlightTxns.set(txnId, journalled);
    try {
      await journalled;
    } catch (err) {
      // Not acknowledged: Synapse keeps the transaction and sends it again.
      log.error("Could not journal a transaction; asking the homeserver to retry", { txnId, error: (err as Error).message });
      metrics.transactions.inc({ result: "failed" });
      return sendMatrixError(res, 500, "M_UNKNOWN", "Could not store the transaction; retry later");
    } finally {
      this.inFlightTxns.delete(txnId);
    }
    res.json({});
    metrics.transactions.inc({ result: "accepted" });
    events.forEach((event, seq) => this.dispatch(txnId, seq, event));
    if (isEventList(ephemeral)) for (const event of ephemeral) this.emit("ephemeral", event);
  }

  /** Hands journalled events to the bridge again, oldest first (after a crash or restart). */
  async replayJournal(): Promise<number> {
    const pending = await this.store.getPendingEvents();
    if (pending.length > 0) log.info("Replaying events acknowledged before the last stop", { count: pending.length });
    for (const { txnId, seq, event } of pending) this.dispatch(txnId, seq, event);
    return pending.length;
  }

  private dispatch(txnId: string, seq: number, event: MatrixEvent): void {
    // The library's Bridge keeps its intent and membership caches from these.
    this.emit("event", event);
    if (event.type) this.emit(`type:${event.type}`, event);
    if (!this.sink) return; // stays in the journal; replayed at the next start
    const done: Promise<void> = this.sink(event)
      .catch((err: Error) => {
        log.error("Event handler failed", { eventId: event.event_id, error: err.message, stack: err.stack });
      })
      .then(() => this.store.markEventDone(txnId, seq))
      .catch((err: Error) => {
        log.error("Could not mark an event handled", { txnId, seq, error: err.message });
      })
      .finally(() => this.handling.delete(done));
    this.handling.add(done);
  }

  /** Waits (bounded) for events being handled; whatever is unfinished is replayed next start. */
  async drain(timeoutMs: number): Promise<void> {
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref());
    await Promise.race([Promise.allSettled([...this.handling]), timeout]);
  }
}

// AppService binds `this.onTransaction` (and the query handlers) to its routes in its
// constructor; the methods are private in its typings, so the overrides are installed on the
// prototype here.
for (const [method, which] of [["onGetRoomAlias", "aliasQuery"], ["onGetUsers", "userQuery"]] as const) {
  Object.defineProperty(DurableAppService.prototype, method, {
    value(this: DurableAppService, req: Request, res: Response) {
      const id = which === "aliasQuery" ? req.params.alias : req.params.userId;
      return this.answerQuery(req, res, this[which], id);
    },
  });
}
Object.defineProperty(DurableAppService.prototype, "onTransaction", {
  value(this: DurableAppService, req: Request, res: Response) {
    this.handleTransaction(req, res).catch((err: Error) => {
      log.error("Transaction handling failed", { error: err.message });
      if (!res.headersSent) sendMatrixError(res, 500, "M_UNKNOWN", "Internal error");
    });
  },
});
