/**
 * Puts a ceiling on every HTTP call the bot SDK (under matrix-appservice-bridge) makes to the
 * homeserver. A missing timeout once wedged Matrix-to-IRC traffic for hours; the SDK's
 * default is 60 s per call, which this replaces with the configured value.
 *
 * Every call the bridge makes to the homeserver passes here, so this is also where the bridge
 * learns that the homeserver answers (for /ready) and counts the outcomes (for metrics); the one
 * call made beside the SDK (a ghost's message, see sendAt) takes its ceiling and is observed here too.
 */
import { setRequestFn } from "@vector-im/matrix-bot-sdk";
import { relayMetrics } from "../metrics/metrics.js";
import { leanRequest, type RequestParams } from "./leanRequest.js";

type Callback = (err: unknown, response: { statusCode?: number } | undefined, body: unknown) => void;

let installed = false;
let lastAnsweredAt = 0;
/** The ceiling on one call (the SDK's own default until installHttpTimeout sets the configured one). */
let ceilingMs = 60_000;

/** The longest one call to the homeserver may take (for calls made outside the SDK: see sendAt). */
export function homeserverCallCeilingMs(): number {
  return ceilingMs;
}

/** When the homeserver last answered a call (ms since the epoch; 0: not yet). */
export function homeserverLastAnsweredAt(): number {
  return lastAnsweredAt;
}

/** Notes one call's outcome. 502-504 come from a proxy in front of a homeserver that did not answer. */
export function observe(err: unknown, status: number | undefined): void {
  if (err || status === undefined) return void relayMetrics.homeserverRequests.of("failed").inc();
  relayMetrics.homeserverRequests.of(status < 400 ? "ok" : status < 500 ? "client_error" : "server_error").inc();
  if (status < 502 || status > 504) lastAnsweredAt = Date.now();
}

/**
 * Installs the SDK's HTTP function: `leanRequest` (see there why not the SDK's `request`),
 * with the timeout ceiling and the outcome bookkeeping.
 */
export function installHttpTimeout(timeoutMs: number): void {
  if (installed) return;
  installed = true;
  ceilingMs = timeoutMs;
  setRequestFn((params: RequestParams, callback: Callback) =>
    leanRequest({ ...params, timeout: Math.min(params.timeout ?? timeoutMs, timeoutMs) }, (err, response, body) => {
      observe(err, response?.statusCode);
      callback(err, response, body);
    }),
  );
}
