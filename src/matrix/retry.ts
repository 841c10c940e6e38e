/**
 * Retries a call to the homeserver while the failure is one that goes away by itself
 * (network errors, timeouts, 5xx, 429), with exponential backoff capped at `maxDelayMs`,
 * until `giveUpAfterMs` has passed. Other failures (403, 404, ...) are thrown at once.
 */
import { setTimeout as sleep } from "node:timers/promises";

interface HttpishError {
  statusCode?: number;
  httpStatus?: number;
  errcode?: string;
  retryAfterMs?: number;
  body?: { errcode?: string; retry_after_ms?: number };
  code?: string;
}

export function httpStatusOf(err: unknown): number | undefined {
  const e = err as HttpishError;
  return e?.statusCode ?? e?.httpStatus;
}

export function errcodeOf(err: unknown): string | undefined {
  const e = err as HttpishError;
  return e?.errcode ?? e?.body?.errcode;
}

export function isTransient(err: unknown): boolean {
  const status = httpStatusOf(err);
  if (status !== undefined) return status >= 500 || status === 429;
  const code = (err as HttpishError)?.code;
  return typeof code === "string" && /^(ECONN|ETIMEDOUT|ESOCKETTIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|UND_ERR)/.test(code);
}

export interface RetryOptions {
  giveUpAfterMs: number;
  maxDelayMs?: number;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

export async function withRetry<T>(fn: () => Promise<T>, opts: RetryOptions): Promise<T> {
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err) || Date.now() - started > opts.giveUpAfterMs) throw err;
      const e = err as HttpishError;
      const hinted = e?.retryAfterMs ?? e?.body?.retry_after_ms;
      const delay = Math.min(opts.maxDelayMs ?? 30_000, hinted ?? 250 * 2 ** (attempt - 1));
      opts.onRetry?.(err, attempt, delay);
      await sleep(delay);
    }
  }
}
