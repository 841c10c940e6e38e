/**
 * What operators (and their Prometheus) ask the bridge: GET /metrics, /health (the process
 * serves) and /ready (traffic flows: see Readiness). With `metrics.port` set these are served
 * on their own listener there, and NOT on the appservice port, which then stays for the
 * homeserver alone; otherwise they are added to the appservice listener, as before.
 * `metrics.enabled: false` leaves out /metrics only.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Application } from "express";
import type { BridgeConfig } from "../config/schema.js";
import { getLogger } from "../logging.js";
import { registry } from "../metrics/metrics.js";
import type { Readiness } from "./Readiness.js";

const log = getLogger("ops/http");

interface Answer {
  status: number;
  type: string;
  body: string;
}

export class OpsHttp {
  private server: Server | null = null;

  constructor(
    private readonly config: BridgeConfig["metrics"],
    private readonly readiness: () => Promise<Readiness>,
  ) {}

  /** Whether these routes have a listener of their own (else they go on the appservice app). */
  get ownPort(): boolean {
    return this.config.port !== null;
  }

  /** The answer for a path, or null when it is not one of ours. */
  private async answer(path: string, query: URLSearchParams): Promise<Answer | null> {
    if (path === "/health") return { status: 200, type: "application/json", body: JSON.stringify({ status: "ok" }) };
    if (path === "/ready") {
      const readiness = await this.readiness();
      return { status: readiness.ready ? 200 : 503, type: "application/json", body: JSON.stringify(readiness) };
    }
    if (path === "/metrics" && this.config.enabled) {
      // Benchmarks start the bridge with --expose-gc and ask for a collection first, so heap
      // figures are live data only. Without --expose-gc, ?gc=1 does nothing.
      const gc = (globalThis as { gc?: () => void }).gc;
      if (query.get("gc") === "1" && gc) gc();
      return { status: 200, type: registry.contentType, body: await registry.metrics() };
    }
    return null;
  }

  /** Without a port of their own: the routes go on the appservice's express app. */
  addTo(app: Application): void {
    for (const path of ["/health", "/ready", "/metrics"]) {
      app.get(path, (req, res, next) => {
        this.answer(path, new URLSearchParams(req.url.split("?")[1] ?? ""))
          .then((a) => (a ? res.status(a.status).type(a.type).send(a.body) : next()))
          .catch(next);
      });
    }
  }

  /** With `metrics.port`: listens there. */
  async listen(): Promise<void> {
    const { port, bindAddress } = this.config;
    if (port === null) return;
    const server = createServer((req, res) => void this.serve(req, res));
    server.requestTimeout = 30_000;
    server.headersTimeout = 10_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, bindAddress, () => {
        server.off("error", reject);
        resolve();
      });
    });
    log.info("Metrics and health listening", { address: bindAddress, port });
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    try {
      const answer = req.method === "GET" || req.method === "HEAD" ? await this.answer(url.pathname, url.searchParams) : null;
      const { status, type, body } = answer ?? { status: 404, type: "application/json", body: JSON.stringify({ error: "not found" }) };
      res.writeHead(status, { "Content-Type": type }).end(req.method === "HEAD" ? undefined : body);
    } catch (err) {
      log.error("Answering an operator's request failed", { path: url.pathname, error: (err as Error).message });
      if (!res.headersSent) res.writeHead(500, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ error: "internal error" }));
    }
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeIdleConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
