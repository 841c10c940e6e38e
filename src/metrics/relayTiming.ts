/**
 * When each Matrix event reached the bridge (its transaction's arrival), for the
 * `bridge_relay_seconds` histogram: the event object travels from the appservice listener to
 * the IRC writer, so the time rides along with it, and is gone with the event.
 */
import { performance } from "node:perf_hooks";
import { relayMetrics } from "./metrics.js";

const receivedAt = new WeakMap<object, number>();

export function noteEventReceived(event: object, at = performance.now()): void {
  receivedAt.set(event, at);
}

export function now(): number {
  return performance.now();
}

/** A callback for the moment the event's first line is written to IRC (nothing for a replayed event, whose wait was a restart). */
export function onEventWritten(event: object): (() => void) | undefined {
  const since = receivedAt.get(event);
  if (since === undefined) return undefined;
  return () => relayMetrics.secondsToIrc.observe((performance.now() - since) / 1000);
}
