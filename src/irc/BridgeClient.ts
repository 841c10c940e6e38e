/**
 * irc-framework's Client as every connection of ours uses it, trimmed for thousands of idle
 * puppets. irc-framework builds per client what is the same for every client, and keeps
 * after registration what it no longer reads; each trim below names what the library reads
 * later, so none of them changes what it does:
 *
 * - Its command table (`command_handler.handlers`: ~250 entries, a few dozen of them
 *   closures made per client) is one frozen table for all: `executeCommand` only looks a
 *   handler up, and every handler gets its client as an argument.
 * - NetworkInfo's methods (`supports`, `isChannelName`, `cap.isEnabled`, ...) are made per
 *   instance as closures that only use `this`: one shared function each.
 * - Once registered (end of MOTD: ISUPPORT has been read), the ISUPPORT options, the
 *   enabled caps and the server's name are interned: connections to the same network with
 *   the same answers share one copy (see `internOptions`). The caps the server offered
 *   (`cap.available`) are dropped: after registration the library only adds to and deletes
 *   from it (CAP NEW / DEL), and a new connection starts it afresh.
 * - Events reach the connection through one dispatch table (`ClientEvents`) instead of a
 *   closure and a listener entry per event per client. Other listeners (`client.on`, as
 *   `exchange` and registration use) work as before and run after the table.
 */
import { Client, type ClientOptions } from "irc-framework";
import { CLIENT_EVENTS, type ClientEventSink } from "./clientEvents.js";

type HandlerTable = Record<string, (...args: unknown[]) => void>;
type Network = Client["network"] & Record<string, unknown>;

let sharedHandlers: Readonly<HandlerTable> | null = null;
let sharedNetworkMethods: Record<string, unknown> | null = null;
let sharedIsEnabled: unknown = null;

/** Interned ISUPPORT options by content, across all connections (bounded: servers rarely differ). */
const OPTIONS_INTERNED = new Map<string, Record<string, unknown>>();
const ARRAYS_INTERNED = new Map<string, readonly string[]>();
const STRINGS_INTERNED = new Map<string, string>();
const MAX_INTERNED = 256;

function remember<T>(map: Map<string, T>, key: string, value: T): T {
  if (map.size >= MAX_INTERNED) map.delete(map.keys().next().value!);
  map.set(key, value);
  return value;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** One copy of a short string kept per connection (a server name), not a slice of the line it came in. */
export function internString(value: string): string {
  const known = STRINGS_INTERNED.get(value);
  if (known !== undefined) return known;
  // A copy of its own: `value` may be a slice that keeps the whole raw line alive.
  const own = Buffer.from(value, "utf8").toString("utf8");
  return remember(STRINGS_INTERNED, own, own);
}

/**
 * The ISUPPORT options of one connection, as a new object whose prototype is one shared copy
 * of them (equal options, same copy). Reads see the shared values; the library's writes
 * (ISUPPORT lines after a reconnect) land on the connection's own object and shadow them,
 * so no connection ever changes another's. Values in the shared copy are frozen.
 */
export function internOptions(options: Record<string, unknown>): Record<string, unknown> {
  const flat: Record<string, unknown> = {};
  // for..in: the connection's own values and those it inherits from an earlier interning.
  for (const key in options) flat[key] = options[key];
  const key = JSON.stringify(Object.entries(flat).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  let shared = OPTIONS_INTERNED.get(key);
  if (!shared) {
    // Own copies of the strings (not slices of the 005 lines), then frozen values.
    const copy = JSON.parse(JSON.stringify(flat)) as Record<string, unknown>;
    for (const value of Object.values(copy)) deepFreeze(value);
    shared = remember(OPTIONS_INTERNED, key, copy);
  }
  return Object.create(shared) as Record<string, unknown>;
}

/** One frozen copy of an array of strings per content (the library replaces it, never changes it in place). */
export function internArray(values: readonly string[]): readonly string[] {
  const key = values.join(" ");
  return ARRAYS_INTERNED.get(key) ?? remember(ARRAYS_INTERNED, key, Object.freeze(values.map(internString)));
}

export class BridgeClient extends Client {
  constructor(options: Partial<ClientOptions> & { listener: ClientEventSink }) {
    super(options);
    const internals = this as unknown as { command_handler: { handlers: HandlerTable } };
    // Built once, from the first client's table (the later ones' are the same functions, or
    // closures over the same module-level data); frozen so that an addHandler throws.
    sharedHandlers ??= Object.freeze(Object.assign(Object.create(null) as HandlerTable, internals.command_handler.handlers));
    internals.command_handler.handlers = sharedHandlers as HandlerTable;
    const network = this.network as Network;
    if (!sharedNetworkMethods) {
      sharedNetworkMethods = Object.fromEntries(Object.entries(network).filter(([, v]) => typeof v === "function"));
      sharedIsEnabled = network.cap.isEnabled;
    }
    Object.assign(network, sharedNetworkMethods);
    (network.cap as { isEnabled: unknown }).isEnabled = sharedIsEnabled;
  }

  private get sink(): ClientEventSink {
    return (this.options as unknown as { listener: ClientEventSink }).listener;
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    const handler = typeof event === "string" ? CLIENT_EVENTS[event] : undefined;
    if (handler) handler(this.sink, args[0]);
    if (event === "motd") this.trimAfterRegistration();
    return super.emit(event, ...args);
  }

  /** ISUPPORT has been read (it comes before the MOTD): what is left is interned or dropped. */
  private trimAfterRegistration(): void {
    const network = this.network as Network & { cap: { available: Map<string, string> }; server?: unknown; ircd?: unknown };
    network.options = internOptions(network.options as Record<string, unknown>) as Network["options"];
    network.cap.enabled = internArray(network.cap.enabled) as string[];
    if (network.cap.available.size > 0) network.cap.available = new Map();
    for (const key of ["server", "ircd", "name"] as const) {
      const value = network[key];
      if (typeof value === "string") (network as Record<string, unknown>)[key] = internString(value);
    }
    // Arrays grown by push keep their spare capacity. The library replaces request_extra_caps,
    // never changes it in place (so it can be shared); time_offsets is this connection's own.
    const handler = (this as unknown as { command_handler: { request_extra_caps: readonly string[] } }).command_handler;
    handler.request_extra_caps = internArray(handler.request_extra_caps);
    const offsets = (network as unknown as { time_offsets: number[] }).time_offsets;
    (network as unknown as { time_offsets: number[] }).time_offsets = offsets.slice();
    // Our nick as the welcome gave it may be a slice of that whole line.
    if (this.user.nick) this.user.nick = Buffer.from(this.user.nick, "utf8").toString("utf8");
  }
}
