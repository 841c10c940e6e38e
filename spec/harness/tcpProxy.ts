/**
 * A TCP relay between the bridge and the IRCd, for tests that need to see or steer the
 * bridge's connections: when each one was opened, and holding new ones back for a while.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { freePort } from "./ports.js";

/** One relayed connection, which a test can silence (a dead link) or cut. */
export class ProxiedConnection {
  frozen = false;
  /** Also drop what the client sends (a link dead both ways). */
  frozenUpstream = false;
  constructor(readonly client: Socket) {}

  /** From now on, nothing the server sends reaches the client (as on a dead link). */
  freeze(): void {
    this.frozen = true;
  }

  /** From now on, nothing gets through either way, and neither end is told (a dead link). */
  freezeBothWays(): void {
    this.frozen = true;
    this.frozenUpstream = true;
  }

  /** Closes the client's socket, as a network failure would. */
  cut(): void {
    this.client.destroy();
  }
}

export class TcpProxy {
  /** When each client connection was accepted (ms since the epoch). */
  readonly acceptedAt: number[] = [];
  /** Every connection accepted, in order. */
  readonly connections: ProxiedConnection[] = [];
  port = 0;
  private server: Server | null = null;
  private held: (() => void)[] | null = null;
  private readonly sockets = new Set<Socket>();
  /** Nothing gets through either way on any connection, old or new (see freezeAll). */
  private allFrozen = false;

  constructor(private readonly upstreamPort: number) {}

  async start(): Promise<void> {
    this.port = await freePort();
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(this.port, "127.0.0.1", () => resolve());
    });
  }

  private accept(client: Socket): void {
    this.acceptedAt.push(Date.now());
    const relayed = new ProxiedConnection(client);
    this.connections.push(relayed);
    this.sockets.add(client);
    client.on("close", () => this.sockets.delete(client));
    client.on("error", () => client.destroy());
    const forward = () => {
      if (client.destroyed) return;
      const upstream = createConnection({ host: "127.0.0.1", port: this.upstreamPort });
      this.sockets.add(upstream);
      upstream.on("close", () => {
        this.sockets.delete(upstream);
        client.destroy();
      });
      upstream.on("error", () => upstream.destroy());
      client.on("close", () => upstream.destroy());
      client.on("data", (chunk: Buffer) => {
        if (!relayed.frozenUpstream && !this.allFrozen && !upstream.destroyed) upstream.write(chunk);
      });
      upstream.on("data", (chunk: Buffer) => {
        if (!relayed.frozen && !this.allFrozen && !client.destroyed) client.write(chunk);
      });
    };
    if (this.held) this.held.push(forward);
    else forward();
  }

  /** Every connection, now and later, goes silent both ways (what was sent meanwhile is lost). */
  freezeAll(): void {
    this.allFrozen = true;
  }

  /** Lifts freezeAll. */
  thawAll(): void {
    this.allFrozen = false;
  }

  /** New connections are accepted but not forwarded until `release()`. */
  hold(): void {
    this.held ??= [];
  }

  release(): void {
    const waiting = this.held ?? [];
    this.held = null;
    for (const forward of waiting) forward();
  }

  /** The most connections accepted within any one-second window [t, t + 1 s) since `since`. */
  maxPerSecond(since = 0): number {
    const times = this.acceptedAt.filter((t) => t >= since).sort((a, b) => a - b);
    let best = 0;
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[i] - times[j] >= 1000) j++;
      best = Math.max(best, i - j + 1);
    }
    return best;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
