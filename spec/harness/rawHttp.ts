/**
 * HTTP/1.1 over a plain TCP socket, byte for byte, for hostile-input tests: fetch normalises
 * paths, refuses odd methods and headers, and always finishes its body, which is exactly what
 * these tests must not do.
 */
import { connect } from "node:net";

export interface RawResponse {
  /** null when nothing parsable came back before the deadline or the close. */
  status: number | null;
  headers: Record<string, string>;
  body: string;
  /** The server closed the connection (with or without an answer). */
  closed: boolean;
  /** Milliseconds from the first byte written to the answer, the close or the deadline. */
  ms: number;
}

export interface RawRequestOptions {
  /** Give up (status null unless something came) after this long. */
  timeoutMs?: number;
}

/** Builds a request; Content-Length is added unless a header of that name is given. */
export function buildRequest(method: string, path: string, headers: Record<string, string>, body: Buffer | string = ""): Buffer {
  const payload = typeof body === "string" ? Buffer.from(body) : body;
  const all: Record<string, string> = { Host: "127.0.0.1", Connection: "close", ...headers };
  if (!Object.keys(all).some((h) => h.toLowerCase() === "content-length" || h.toLowerCase() === "transfer-encoding")) all["Content-Length"] = String(payload.length);
  const head = `${method} ${path} HTTP/1.1\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), payload]);
}

/** Writes `bytes` (the socket stays open for the answer) and reads one response. */
export function rawRequest(port: number, bytes: Buffer, options: RawRequestOptions = {}): Promise<RawResponse> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  return new Promise((resolve) => {
    const started = Date.now();
    const chunks: Buffer[] = [];
    let settled = false;
    const socket = connect(port, "127.0.0.1");
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parse(Buffer.concat(chunks)), closed, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on("connect", () => socket.write(bytes, () => undefined));
    socket.on("data", (chunk) => {
      chunks.push(chunk);
      if (complete(Buffer.concat(chunks))) finish(false);
    });
    socket.on("error", () => finish(true));
    socket.on("close", () => finish(true));
  });
}

function split(buf: Buffer): { head: string; body: Buffer } | null {
  const end = buf.indexOf("\r\n\r\n");
  return end < 0 ? null : { head: buf.subarray(0, end).toString("latin1"), body: buf.subarray(end + 4) };
}

function complete(buf: Buffer): boolean {
  const parts = split(buf);
  if (!parts) return false;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(parts.head);
  return length !== null && parts.body.length >= Number(length[1]);
}

function parse(buf: Buffer): Omit<RawResponse, "closed" | "ms"> {
  const parts = split(buf);
  const status = parts ? /^HTTP\/1\.[01] (\d{3})/.exec(parts.head) : null;
  if (!parts || !status) return { status: null, headers: {}, body: buf.toString("utf8") };
  const headers: Record<string, string> = {};
  for (const line of parts.head.split("\r\n").slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(status[1]), headers, body: parts.body.toString("utf8") };
}
