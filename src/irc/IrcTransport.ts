/**
 * irc-framework's TCP transport, as every connection of ours (the bot's and the puppets')
 * uses it. It is where each line from the server enters, so it is where hostile input stops:
 *
 * - A line may be at most MAX_LINE_BYTES long. Past that without a line end, what came is
 *   dropped and so is the rest of the line up to its LF: a server cannot make us buffer megabytes.
 * - A line irc-framework would choke on (a missing parameter it reads by position, see
 *   `malformedReason`) never reaches it.
 * - Everything done with one line (irc-framework's parsing and handlers, then every listener
 *   of ours down to the channel roster) runs synchronously from `emit("line")`; an exception
 *   there drops that line alone, and the next line is handled as usual.
 * - A channel PRIVMSG, NOTICE or TAGMSG said by one of our puppets is read only by that
 *   puppet's own connection (its echo); every other connection of ours skips it undecoded.
 * - For puppets (`quiet`): lines the connection would drop anyway (others' membership changes,
 *   channel listings: see `isAboutOthers`) are recognised from their first bytes and skipped
 *   before they are decoded. In a channel of N puppets every JOIN arrives N times.
 *
 * Dropped lines are counted and logged (rate-limited) by LineFaults.
 */
import { isUtf8 } from "node:buffer";
import { createRequire } from "node:module";
import { connect as netConnect, type Socket } from "node:net";
import { TLSSocket } from "node:tls";
import { channelLineSender, channelLineTargetAndMsgid, isAboutOthersIn, malformedReason } from "./lineFilter.js";
import { BatchBound } from "./batchBound.js";
import { lineFaults as defaultFaults, type LineFaults } from "./lineFaults.js";

interface NetTransport {
  incoming_buffer: Buffer;
  encoding: string;
  socket: Socket | null;
  onSocketRawConnected(): void;
  onSocketFullyConnected(): void;
  onSocketClose(): void;
  onSocketError(err: Error): void;
  onSocketTimeout(): void;
  options: TransportOptions;
  state: number;
  requested_disconnect: boolean;
  disposeSocket(): void;
  setEncoding(encoding: string): boolean;
  getAddressFamily(address: string | undefined): number | undefined;
  emit(event: "line", line: string): boolean;
  on(event: "line", listener: (line: string) => void): this;
  onSocketData(data: Buffer): void;
  connect(): void;
}
type NetTransportClass = new (options: unknown) => NetTransport;
/** The client's options, as irc-framework's transport reads them. */
interface TransportOptions {
  host: string;
  port?: number;
  tls?: boolean;
  ssl?: boolean;
  socks?: unknown;
  encoding?: string;
  outgoing_addr?: string;
  ping_interval?: number;
  ping_timeout?: number;
}
/** irc-framework's transport's state while its socket connects. */
const SOCK_CONNECTING = 1;

const require = createRequire(import.meta.url);
const NetTransportBase = require("irc-framework/src/transports/net") as NetTransportClass;
const iconv = require("iconv-lite") as { decode(buffer: Buffer, encoding: string): string };

/** The longest line accepted, line end included: IRCv3 allows 8191 bytes of tags plus 512. */
export const MAX_LINE_BYTES = 16 * 1024;

/** What the transport asks of its connection (no closure per connection: memory counts here). */
export interface TransportListener {
  readonly nick: string;
  /** True while the connection wants every line (a raw command's answer may be a listing). */
  readonly hearsAll: boolean;
  readonly options: { readonly networkId: string; readonly quiet: boolean; readonly encodingFallback?: string | null };
  /** When the socket last delivered anything: set here, read by LinkWatch. */
  heardAt: number;
  /** The server's channel prefixes (CHANTYPES). */
  readonly chanTypes?: string;
  /** Whether a channel line from `nick` (as sent) was said by a puppet of ours other than this connection's. */
  sentByAnotherPuppet?(nick: string): boolean;
  /** Whether a channel line with this msgid (target as sent) already went through from another connection. */
  deliveredElsewhere?(sender: string, target: string, msgid: string): boolean;
  /** Handles a PRIVMSG or NOTICE line as irc-framework would (true), or leaves it to irc-framework (see plainMessage.ts). */
  plainMessage?(line: string): boolean;
}

/**
 * One line's text: valid UTF-8 stays UTF-8; anything else is read with the network's fallback
 * encoding (latin1, cp1252, ...), judged per line (a socket chunk may end mid-character).
 */
export function decodeLine(bytes: Buffer, encoding: string, fallback: string | null): string {
  // UTF-8 (irc-framework's "utf8", the usual case) is Node's own decoding, as iconv-lite's is,
  // without a decoder object per line; iconv-lite also drops a leading BOM, and so does this.
  if (encoding === "utf8" && (!fallback || isUtf8(bytes))) {
    const text = bytes.toString("utf8");
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  }
  if (fallback && encoding.toLowerCase().replace("-", "") === "utf8" && !isUtf8(bytes)) return iconv.decode(bytes, fallback);
  return iconv.decode(bytes, encoding);
}

/** Enough of a line to see its tags, prefix and command. */
const HEAD_BYTES = 600;
const EMPTY = Buffer.alloc(0);

/**
 * Where every plain TCP socket of ours reads into. Node would otherwise allocate a buffer for
 * each read of each socket (and in a channel of N puppets, every JOIN reaches N sockets): all
 * of it is handled synchronously (lines copied out as strings, a partial line copied), so one
 * buffer serves every socket.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** The transport a socket's events go to (one set of listener functions for all sockets). */
const TRANSPORT = Symbol("transport");
type OwnedSocket = Socket & { [TRANSPORT]?: IrcTransport };
const SOCKET_EVENTS = {
  rawConnect(this: OwnedSocket) {
    this[TRANSPORT]?.onSocketRawConnected();
  },
  fullyConnected(this: OwnedSocket) {
    // Connected once and for all: the connect listeners (an array per socket) can go.
    this.off("connect", SOCKET_EVENTS.rawConnect);
    this.off("connect", SOCKET_EVENTS.fullyConnected);
    this.off("secureConnect", SOCKET_EVENTS.fullyConnected);
    this[TRANSPORT]?.onSocketFullyConnected();
  },
  close(this: OwnedSocket) {
    this[TRANSPORT]?.onSocketClose();
  },
  error(this: OwnedSocket, err: Error) {
    this[TRANSPORT]?.onSocketError(err);
  },
  data(this: OwnedSocket, data: Buffer) {
    this[TRANSPORT]?.onSocketData(data);
  },
  timeout(this: OwnedSocket) {
    this[TRANSPORT]?.onSocketTimeout();
  },
};

/**
 * Pass as irc-framework's `transport` option, with a `listener` (the IrcConnection) in the
 * same options object (irc-framework hands its options to the transport). One class for every
 * connection: a class per connection would cost a few KiB each.
 */
export class IrcTransport extends NetTransportBase {
  private readonly listener: TransportListener;
  private readonly faults: LineFaults;
  /** Inside a line that went past MAX_LINE_BYTES: drop everything up to its LF. */
  private discarding = false;
  private batches: BatchBound | null = null;

  constructor(options: { listener: TransportListener; lineFaults?: LineFaults }) {
    super(options);
    this.listener = options.listener;
    this.faults = options.lineFaults ?? defaultFaults;
    this.incoming_buffer = EMPTY;
  }

  override connect(): void {
    this.discarding = false;
    const options = this.options;
    // TLS and SOCKS as irc-framework does them; plain TCP as it does too, reading into READ_BUFFER.
    if (options.tls || options.ssl || options.socks) return super.connect();
    this.disposeSocket();
    this.requested_disconnect = false;
    this.incoming_buffer = EMPTY;
    if (!options.encoding || !this.setEncoding(options.encoding)) this.setEncoding("utf8");
    this.state = SOCK_CONNECTING;
    const socket = netConnect({
      host: options.host,
      port: options.port || 6667,
      localAddress: options.outgoing_addr,
      family: this.getAddressFamily(options.outgoing_addr),
      onread: { buffer: READ_BUFFER, callback: (bytes: number, buffer: Uint8Array) => {
        this.onSocketData(Buffer.from(buffer.buffer, buffer.byteOffset, bytes));
        return true;
      } },
    });
    this.socket = socket;
    this._onSocketCreate(options, socket);
  }

  /**
   * irc-framework's own, with shared listener functions: it binds six methods and makes six
   * unbinding closures per socket (a kilobyte per puppet). Same events, same order.
   */
  _onSocketCreate(options: { ping_interval?: number; ping_timeout?: number }, socket: OwnedSocket): void {
    const { ping_interval: interval = 0, ping_timeout: timeout = 0 } = options;
    if (interval > 0 && timeout > 0) socket.setTimeout((interval + timeout) * 1000);
    socket[TRANSPORT] = this;
    const tls = socket instanceof TLSSocket;
    if (socket.readyState !== "opening") {
      this.onSocketRawConnected();
      if (!tls) this.onSocketFullyConnected();
    } else socket.on("connect", SOCKET_EVENTS.rawConnect);
    socket.on(tls ? "secureConnect" : "connect", SOCKET_EVENTS.fullyConnected);
    socket.on("close", SOCKET_EVENTS.close);
    socket.on("error", SOCKET_EVENTS.error);
    socket.on("data", SOCKET_EVENTS.data);
    socket.on("timeout", SOCKET_EVENTS.timeout);
  }

  /** Called by irc-framework when it lets go of the socket. */
  _unbindEvents(): void {
    const socket = this.socket as OwnedSocket | null;
    if (!socket) return;
    socket.off("connect", SOCKET_EVENTS.rawConnect);
    socket.off("connect", SOCKET_EVENTS.fullyConnected);
    socket.off("secureConnect", SOCKET_EVENTS.fullyConnected);
    socket.off("close", SOCKET_EVENTS.close);
    socket.off("error", SOCKET_EVENTS.error);
    socket.off("data", SOCKET_EVENTS.data);
    socket.off("timeout", SOCKET_EVENTS.timeout);
    delete socket[TRANSPORT];
  }

  override onSocketData(data: Buffer): void {
    this.listener.heardAt = Date.now();
    let buffer = data;
    let start = 0;
    if (this.discarding) {
      const lf = data.indexOf(0x0a);
      if (lf < 0) return;
      this.discarding = false;
      start = lf + 1;
    } else if (this.incoming_buffer.length) {
      buffer = Buffer.concat([this.incoming_buffer, data]);
    }
    for (;;) {
      const end = buffer.indexOf(0x0a, start) + 1;
      if (end === 0) break;
      if (end - start > MAX_LINE_BYTES) this.tooLong(buffer.subarray(start, end));
      else this.deliver(buffer, start, end);
      start = end;
    }
    if (buffer.length - start > MAX_LINE_BYTES) {
      this.tooLong(buffer.subarray(start));
      this.discarding = true;
      this.incoming_buffer = EMPTY;
      return;
    }
    // Copy the partial line: `data` may be READ_BUFFER, which the next read overwrites.
    this.incoming_buffer = start === buffer.length ? EMPTY : Buffer.from(buffer.subarray(start));
  }

  private deliver(buffer: Buffer, start: number, end: number): void {
    const listener = this.listener;
    if (listener.options.quiet && !listener.hearsAll && isAboutOthersIn(buffer, start, end, listener.nick, HEAD_BYTES)) return;
    // A channel line reaches every connection of ours in the channel. A puppet's line is read by
    // its own connection as the echo; the others drop it, as the bridge never relays it (see
    // NetworkPool). Of another's line with a msgid, the first copy read goes to the broker, which
    // keeps only that one: the later copies are skipped unparsed. The sender is read once for both.
    const asks = listener.sentByAnotherPuppet !== undefined || listener.deliveredElsewhere !== undefined;
    const sender = asks ? channelLineSender(buffer, start, end, listener.chanTypes ?? "#&", HEAD_BYTES) : null;
    if (sender !== null) {
      if (listener.sentByAnotherPuppet?.(sender)) return;
      const copy = listener.deliveredElsewhere !== undefined ? channelLineTargetAndMsgid(buffer, start, end, HEAD_BYTES) : null;
      if (copy !== null && listener.deliveredElsewhere?.(sender, copy.target, copy.msgid)) return;
    }
    let line = decodeLine(buffer.subarray(start, end), this.encoding, listener.options.encodingFallback ?? null);
    // Made for the connections that see a batch at all (memory counts per puppet).
    if (this.batches || BatchBound.concerns(line)) {
      const passed = (this.batches ??= new BatchBound()).pass(line);
      if (passed === null) return this.faults.report(listener.options.networkId, "malformed", "a batch start past the bound of open batches, or the end of a batch that is not open", line);
      line = passed;
    }
    try {
      // A PRIVMSG or NOTICE the fast path takes has a nick and both parameters, so it is never one
      // malformedReason refuses (spec/unit/plainMessage.test.ts): only lines left to irc-framework,
      // which its handlers would throw on half-way, are checked.
      if (listener.plainMessage?.(line)) return;
      const malformed = malformedReason(line);
      if (malformed) return this.faults.report(listener.options.networkId, "malformed", malformed, line);
      this.emit("line", line);
    } catch (err) {
      this.faults.report(listener.options.networkId, "failed", (err as Error)?.message ?? String(err), line, err);
    }
  }

  private tooLong(start: Buffer): void {
    this.faults.report(this.listener.options.networkId, "too_long", `too long (over ${MAX_LINE_BYTES} bytes without a line end)`, start);
  }
}
