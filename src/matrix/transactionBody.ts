/**
 * What a transaction from the homeserver must look like before anything of it is journalled,
 * acknowledged or handed to a handler. Pure functions, so every rule is unit-testable.
 *
 * The envelope of each event (type, room_id, sender, event_id strings; content an object;
 * state_key a string and unsigned an object when present) is checked here, and a transaction
 * with any event that breaks it is refused whole with 400 M_BAD_JSON, nothing journalled.
 * Why refuse rather than skip the bad event: the homeserver builds that envelope itself and
 * Synapse never sends one that breaks it, so such a transaction is from a broken or forged
 * sender, and a loud 4xx is the honest answer; accepting it would mean acknowledging an event
 * the bridge then silently drops. What is inside `content` is written by any user on any
 * server, so it is NOT checked here: those events are accepted, and each handler reads content
 * defensively, its failure isolated to that one event (see DurableAppService.dispatch).
 */
export type MatrixEvent = Record<string, unknown> & { type?: string; room_id?: string; event_id?: string };

export interface TransactionBody {
  events: MatrixEvent[];
  ephemeral: MatrixEvent[];
}

export interface BodyError {
  errcode: "M_BAD_JSON" | "M_INVALID_PARAM";
  error: string;
}

/**
 * Deeper than this is refused. Synapse (Python, recursion limit ~1000) cannot send deeper
 * JSON, and deeper values would overflow the stack of recursive code later (JSON.stringify
 * when journalling was one: a 500 for every such request).
 */
export const MAX_JSON_DEPTH = 512;

/** Synapse's IDs are small integers; allow any short token that is safe in a path and a store key. */
const TXN_ID = /^[A-Za-z0-9._~=+:@-]{1,200}$/;

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Iterative (no recursion to overflow): is any value nested deeper than `max`? */
export function deeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (depth >= max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === "object" && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}

/**
 * Whether JSON text surely nests no deeper than `max`: it has at most `max` opening brackets
 * (counted, strings included, with the buffer's native search). Nearly every transaction is
 * settled here without walking the parsed value (`deeperThan`).
 */
export function surelyShallow(json: Buffer, max: number): boolean {
  let brackets = 0;
  for (const bracket of [0x7b, 0x5b]) {
    for (let at = json.indexOf(bracket); at !== -1; at = json.indexOf(bracket, at + 1)) if (++brackets > max) return false;
  }
  return true;
}

export function checkTxnId(txnId: string | undefined): BodyError | null {
  if (txnId && TXN_ID.test(txnId) && txnId !== "." && txnId !== "..") return null;
  return { errcode: "M_INVALID_PARAM", error: "Invalid transaction ID" };
}

const STRING_FIELDS = ["type", "room_id", "sender", "event_id"] as const;

function eventProblem(event: unknown, i: number): string | null {
  if (!isObject(event)) return `events[${i}] is not an object`;
  for (const field of STRING_FIELDS) {
    if (typeof event[field] !== "string" || event[field] === "") return `events[${i}].${field} must be a non-empty string`;
  }
  if (!isObject(event.content)) return `events[${i}].content must be an object`;
  if ("state_key" in event && typeof event.state_key !== "string") return `events[${i}].state_key must be a string`;
  if ("unsigned" in event && !isObject(event.unsigned)) return `events[${i}].unsigned must be an object`;
  return null;
}

function ephemeralProblem(list: unknown, key: string): string | null {
  if (!Array.isArray(list)) return `'${key}' must be an array`;
  for (const [i, event] of list.entries()) {
    if (!isObject(event) || typeof event.type !== "string" || !isObject(event.content)) return `${key}[${i}] must be an object with a string type and an object content`;
  }
  return null;
}

/** The transaction's events, or why it is refused. `shallow`: its text is known to nest no deeper than MAX_JSON_DEPTH (surelyShallow). */
export function readTransaction(body: unknown, shallow = false): TransactionBody | BodyError {
  const bad = (error: string): BodyError => ({ errcode: "M_BAD_JSON", error });
  if (!isObject(body)) return bad("The body must be a JSON object");
  if (!Array.isArray(body.events)) return bad("'events' must be an array");
  if (!shallow && deeperThan(body, MAX_JSON_DEPTH)) return bad(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  for (const [i, event] of body.events.entries()) {
    const problem = eventProblem(event, i);
    if (problem) return bad(problem);
  }
  // Synapse sends the unstable key or the stable one: the first present is used, both are checked.
  let ephemeral: MatrixEvent[] | null = null;
  for (const key of ["de.sorunome.msc2409.ephemeral", "ephemeral"]) {
    if (!(key in body)) continue;
    const problem = ephemeralProblem(body[key], key);
    if (problem) return bad(problem);
    ephemeral ??= body[key] as MatrixEvent[];
  }
  return { events: body.events as MatrixEvent[], ephemeral: ephemeral ?? [] };
}
