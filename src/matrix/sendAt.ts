/**
 * Sending an event with the time it happened: the application service `ts` query parameter on
 * `PUT /rooms/{roomId}/send/...`, which Synapse honours for appservice users as the event's
 * `origin_server_ts`. The library's Intent has no option for it, so this sends the PUT itself,
 * with the intent's homeserver URL, token and user (see putEvent); the intent still registers
 * the user and joins the room first when its membership cache does not know it is there.
 *
 * The IRC time is used whenever a line carries one (not only when the line is late): lines of
 * one IRC server then keep their order in time exactly, and a line's time does not jump when it
 * happens to wait a few seconds. The IRCd's and the homeserver's clocks may differ: a time in
 * the future (by the bridge's clock) is never sent, the bridge's now is, so a skewed IRCd can
 * make lines look older than they are but never newer than the Matrix messages after them.
 */
import { MatrixError } from "@vector-im/matrix-bot-sdk";
import type { Intent } from "matrix-appservice-bridge";
import { jsonRequest, jsonTarget, type JsonTarget } from "./leanRequest.js";
import { homeserverCallCeilingMs, observe } from "./httpTimeout.js";
import { errcodeOf } from "./retry.js";

let txnCounter = 0;
const txnPrefix = `irc-${Date.now().toString(36)}-${process.pid}`;

/**
 * A transaction ID for one event: made once and used for every retry of it, so a retry after
 * a lost answer (the homeserver stored the event, the reply never came) is not a second event.
 */
export function newTxnId(): string {
  return `${txnPrefix}-${++txnCounter}`;
}

/** The timestamp to send for something that happened at `time` (ms), or undefined for "now". */
export function timestampFor(time: number | undefined, now = Date.now()): number | undefined {
  if (time === undefined || !Number.isFinite(time) || time <= 0) return undefined;
  return Math.min(Math.floor(time), now);
}

/** What sendEventAt reads of the bot SDK client under an intent (set by the SDK, not in its typings). */
interface ClientFields {
  homeserverUrl: string;
  accessToken: string;
  impersonatedUserId?: string | null;
  impersonatedDeviceId?: string | null;
}

/** The membership cache the library's Intent keeps (`opts.backingStore`), read to skip its join. */
interface IntentInternals {
  opts?: { backingStore?: { getMembership?(roomId: string, userId: string): string | null } };
}

const targets = new WeakMap<object, { key: string; target: JsonTarget; query: string }>();

/** The target and `user_id` query of an intent's client, built once per client (and again if its URL or token changes). */
function targetOf(client: ClientFields): { target: JsonTarget; query: string } {
  const key = `${client.homeserverUrl}\n${client.accessToken}\n${client.impersonatedUserId ?? ""}\n${client.impersonatedDeviceId ?? ""}`;
  let known = targets.get(client);
  if (known?.key !== key) {
    let query = client.impersonatedUserId ? `user_id=${encodeURIComponent(client.impersonatedUserId)}` : "";
    if (client.impersonatedDeviceId) query += `${query ? "&" : ""}org.matrix.msc3202.device_id=${encodeURIComponent(client.impersonatedDeviceId)}`;
    known = { key, target: jsonTarget(client.homeserverUrl, client.accessToken), query };
    targets.set(client, known);
  }
  return known;
}

/** Whether the intent's membership cache says its user is in the room (then no join is needed). */
function knownJoined(intent: Intent, roomId: string): boolean {
  try {
    return (intent as unknown as IntentInternals).opts?.backingStore?.getMembership?.(roomId, intent.userId) === "join";
  } catch {
    return false;
  }
}

/**
 * `PUT .../send/{type}/{txnId}` as the intent's user, in one HTTP call: the bot SDK's request
 * layers (request IDs, logging, redaction copies) are skipped, not its outcomes. Failures are
 * shaped as the SDK shapes them (a MatrixError for an answer with an errcode, the response for
 * another non-2xx answer, the socket's error otherwise), so retry.ts and callers read them alike.
 */
function putEvent(client: ClientFields, roomId: string, type: string, txnId: string, ts: number | undefined, content: Record<string, unknown>): Promise<{ event_id: string }> {
  const { target, query } = targetOf(client);
  let path = `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/${encodeURIComponent(type)}/${encodeURIComponent(txnId)}`;
  const q = ts === undefined ? query : query ? `${query}&ts=${ts}` : `ts=${ts}`;
  if (q) path += `?${q}`;
  return new Promise((resolve, reject) => {
    jsonRequest(target, "PUT", path, JSON.stringify(content), homeserverCallCeilingMs(), (err, statusCode, headers, text) => {
      observe(err, err ? undefined : statusCode);
      if (err) return reject(err);
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // Not JSON: kept as text, as the SDK does.
      }
      if (body && typeof body === "object" && "errcode" in body) return reject(new MatrixError(body as { errcode: string; error: string }, statusCode, (headers ?? {}) as Record<string, string>));
      if (statusCode < 200 || statusCode >= 300) return reject(Object.assign(new Error(`HTTP ${statusCode}`), { statusCode, headers, body }));
      resolve({ event_id: (body as { event_id: string }).event_id });
    });
  });
}

/**
 * Sends an event as `intent`, stamped with `time` (ms since the epoch) when there is one, under
 * `txnId` (see newTxnId) when the caller retries. Every event a ghost sends goes through here.
 * The intent joins first unless its membership cache knows it is in the room already.
 */
export async function sendEventAt(intent: Intent, roomId: string, type: string, content: Record<string, unknown>, time?: number, txnId?: string): Promise<{ event_id: string }> {
  const ts = timestampFor(time);
  if (!knownJoined(intent, roomId)) await intent.join(roomId);
  try {
    return await putEvent(intent.matrixClient as unknown as ClientFields, roomId, type, txnId ?? newTxnId(), ts, content);
  } catch (err) {
    // Not in the room after all (the library's membership cache was stale), or not allowed to
    // speak: the intent's own send knows how to rejoin and ask for power. The time is lost then.
    if (errcodeOf(err) === "M_FORBIDDEN") return intent.sendEvent(roomId, type, content);
    throw err;
  }
}
