/**
 * Sending an event with the time it happened: the application service `ts` query parameter on
 * `PUT /rooms/{roomId}/send/...`, which Synapse honours for appservice users as the event's
 * `origin_server_ts`. The library's Intent has no option for it, so this sends with the
 * intent's own client; the intent still registers the user and joins the room first.
 *
 * The IRC time is used whenever a line carries one (not only when the line is late): lines of
 * one IRC server then keep their order in time exactly, and a line's time does not jump when it
 * happens to wait a few seconds. The IRCd's and the homeserver's clocks may differ: a time in
 * the future (by the bridge's clock) is never sent, the bridge's now is, so a skewed IRCd can
 * make lines look older than they are but never newer than the Matrix messages after them.
 */
import type { Intent } from "matrix-appservice-bridge";
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

/**
 * Sends an event as `intent`, stamped with `time` (ms since the epoch) when there is one, under
 * `txnId` (see newTxnId) when the caller retries.
 */
export async function sendEventAt(intent: Intent, roomId: string, type: string, content: Record<string, unknown>, time?: number, txnId?: string): Promise<{ event_id: string }> {
  const ts = timestampFor(time);
  if (ts === undefined && txnId === undefined) return intent.sendEvent(roomId, type, content);
  await intent.join(roomId);
  const path = `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/${encodeURIComponent(type)}/${encodeURIComponent(txnId ?? newTxnId())}`;
  try {
    const sent = (await intent.matrixClient.doRequest("PUT", path, ts === undefined ? null : { ts }, content)) as { event_id: string };
    return { event_id: sent.event_id };
  } catch (err) {
    // Not in the room after all (the library's membership cache was stale), or not allowed to
    // speak: the intent's own send knows how to rejoin and ask for power. The time is lost then.
    if (errcodeOf(err) === "M_FORBIDDEN") return intent.sendEvent(roomId, type, content);
    throw err;
  }
}
