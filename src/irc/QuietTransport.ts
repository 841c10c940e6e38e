/**
 * irc-framework's TCP transport with one change for puppets: lines that the connection will
 * drop anyway (others' membership changes, channel listings: see `isAboutOthers`) are
 * recognised from their first bytes and skipped before they are decoded. In a channel of N
 * puppets every JOIN arrives N times, so this is where most of the bridge's CPU would go.
 */
import { createRequire } from "node:module";
import { isAboutOthers } from "./lineFilter.js";

interface NetTransport {
  incoming_buffer: Buffer;
  encoding: string;
  emit(event: "line", line: string): boolean;
  onSocketData(data: Buffer): void;
}
type NetTransportClass = new (options: unknown) => NetTransport;

const require = createRequire(import.meta.url);
const NetTransportBase = require("irc-framework/src/transports/net") as NetTransportClass;
const iconv = require("iconv-lite") as { decode(buffer: Buffer, encoding: string): string };

/** What the transport asks of its connection (no closure per connection: memory counts here). */
export interface QuietListener {
  readonly nick: string;
  /** True while the connection wants every line (a raw command's answer may be a listing). */
  readonly hearsAll: boolean;
}

/** Enough of a line to see its tags, prefix and command. */
const HEAD_BYTES = 600;

/**
 * Pass as irc-framework's `transport` option, with a `listener` (the IrcConnection) in the same options
 * object (irc-framework hands its options to the transport). One class for every connection:
 * a class per connection would cost a few KiB each.
 */
export class QuietTransport extends NetTransportBase {
  private readonly listener: QuietListener;

  constructor(options: { listener: QuietListener }) {
    super(options);
    this.listener = options.listener;
  }

  override onSocketData(data: Buffer): void {
    const buffer = this.incoming_buffer.length ? Buffer.concat([this.incoming_buffer, data]) : data;
    let start = 0;
    for (;;) {
      const end = buffer.indexOf(0x0a, start) + 1;
      if (end === 0) break;
      const head = buffer.toString("latin1", start, Math.min(end, start + HEAD_BYTES));
      if (this.listener.hearsAll || !isAboutOthers(head, this.listener.nick)) this.emit("line", iconv.decode(buffer.subarray(start, end), this.encoding));
      start = end;
    }
    // Copy the partial line, so the socket's whole chunk is not kept alive by a view into it.
    this.incoming_buffer = Buffer.from(buffer.subarray(start));
  }
}
