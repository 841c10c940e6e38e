/**
 * An ident server (RFC 1413) for the bridge's IRC connections, so each puppet shows up with
 * its own username rather than `~matrixbot`. IRC servers ask on port 113 of the address we
 * connect from; run the bridge with `ident.port: 113` (needs CAP_NET_BIND_SERVICE or root) or
 * redirect 113 to the configured port, e.g.
 *   iptables -t nat -A PREROUTING -p tcp --dport 113 -j REDIRECT --to-port 1113
 */
import { createServer, type Server, type Socket } from "node:net";
import { getLogger } from "../logging.js";

const log = getLogger("irc/ident");
const MAX_QUERY_BYTES = 1000;
const QUERY_TIMEOUT_MS = 10_000;

/** Answers "which username owns this connection?" by our local port and the server's port. */
export type IdentLookup = (localPort: number, remotePort: number) => string | null;

/** The reply line for one query, per RFC 1413 (exported for tests). */
export function identReply(query: string, lookup: IdentLookup): string {
  const match = /^\s*(\d{1,5})\s*,\s*(\d{1,5})\s*$/.exec(query);
  if (!match) return `${query.trim().slice(0, 64)} : ERROR : INVALID-PORT`;
  const [local, remote] = [Number(match[1]), Number(match[2])];
  const ports = `${local} , ${remote}`;
  if (local < 1 || local > 65535 || remote < 1 || remote > 65535) return `${ports} : ERROR : INVALID-PORT`;
  const username = lookup(local, remote);
  return username ? `${ports} : USERID : UNIX : ${username}` : `${ports} : ERROR : NO-USER`;
}

export class IdentServer {
  private server: Server | null = null;

  constructor(private readonly lookup: IdentLookup) {}

  async listen(port: number, address: string): Promise<number> {
    const server = createServer((socket) => this.serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, address, () => resolve());
    });
    this.server = server;
    const bound = server.address();
    const boundPort = typeof bound === "object" && bound ? bound.port : port;
    log.info("Ident server listening", { address, port: boundPort });
    return boundPort;
  }

  private serve(socket: Socket): void {
    let buffer = "";
    socket.setTimeout(QUERY_TIMEOUT_MS, () => socket.destroy());
    socket.on("error", () => socket.destroy());
    socket.on("data", (chunk) => {
      buffer += chunk.toString("latin1");
      if (buffer.length > MAX_QUERY_BYTES) return socket.destroy();
      const end = buffer.search(/\r?\n/);
      if (end < 0) return;
      socket.end(`${identReply(buffer.slice(0, end), this.lookup)}\r\n`);
    });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
