/**
 * Puts a ceiling on every HTTP call the bot SDK (under matrix-appservice-bridge) makes to the
 * homeserver. A missing timeout once wedged Matrix-to-IRC traffic for hours; the SDK's
 * default is 60 s per call, which this replaces with the configured value.
 */
import { getRequestFn, setRequestFn } from "@vector-im/matrix-bot-sdk";

let installed = false;

export function installHttpTimeout(timeoutMs: number): void {
  if (installed) return;
  installed = true;
  const original = getRequestFn() as unknown as (params: object, callback: unknown) => unknown;
  setRequestFn((params: { timeout?: number }, callback: unknown) =>
    original({ ...params, timeout: Math.min(params.timeout ?? timeoutMs, timeoutMs) }, callback),
  );
}
