/**
 * Serves media links: checks the signature (a forged or altered link is 404 before anything
 * else happens), the expiry and redactions, then streams the file from the homeserver's
 * authenticated media API with the appservice token, chunk by chunk (never the whole file in
 * memory), capped at `media.maxBytes`, with a time limit until the homeserver answers and
 * between chunks, and a floor on the average rate (`media.minBytesPerSecond`, after
 * `idleTimeoutMs`). A client that goes away aborts the download from the homeserver. Slots are
 * bounded globally and per client address (`media.maxPerClient`), so a few slow clients
 * cannot hold them all.
 *
 * Mounted on the appservice port, or listening on a port of its own (`media.port`).
 */
import { Agent as HttpAgent, createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import type { MediaConfig } from "../config/schema.js";
import { getLogger } from "../logging.js";
import { metrics } from "../metrics/metrics.js";
import { ERROR_HEADERS, mediaHeaders } from "./mediaHeaders.js";
import { parseMxc, type MediaSigner } from "./mediaToken.js";

const log = getLogger("http/media");

export interface MediaServerDeps {
  signer: MediaSigner;
  /** Whether an event was redacted (its links are dead). */
  isRedacted(eventId: string): boolean;
  homeserverUrl: string;
  asToken: string;
}

/** Downloads at once; more are answered 503 (links are public: strangers drive this). */
const MAX_CONCURRENT = 200;

type Outcome = "busy" | "client_busy" | "too_slow" | "served" | "head" | "bad_link" | "expired" | "redacted" | "not_found" | "too_large" | "upstream_error" | "timeout" | "aborted" | "method";

class TooLarge extends Error {}

export class MediaServer {
  private server: Server | null = null;
  private inFlight = 0;
  /** Downloads in flight per client address. */
  private readonly perClient = new Map<string, number>();
  /** Node's own HTTP client, not fetch: the socket's backpressure reaches the homeserver, and no web-stream copy. */
  private readonly agents = { "http:": new HttpAgent({ keepAlive: true }), "https:": new HttpsAgent({ keepAlive: true }) };

  constructor(
    private readonly config: MediaConfig,
    private readonly deps: MediaServerDeps,
  ) {}

  /** Handles the request if its path is a media link (true), else leaves it alone (false). */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? "/";
    const parsed = this.deps.signer.parsePath(url.split("?")[0]);
    if (!parsed) return false;
    this.serve(req, res, parsed.token, parsed.filename).then(
      (outcome) => metrics.mediaRequests.inc({ outcome }),
      (err: Error) => {
        log.warn("Media request failed", { error: err.message });
        metrics.mediaRequests.inc({ outcome: "upstream_error" });
        if (!res.headersSent) this.answer(res, 502, "The file could not be fetched");
        else res.destroy();
      },
    );
    return true;
  }

  /** A listener of its own (`media.port`), answering 404 to anything but media links. */
  async listen(port: number, host: string): Promise<void> {
    const server = createServer({ requestTimeout: 15_000, headersTimeout: 10_000, maxHeaderSize: 16 * 1024 }, (req, res) => {
      if (!this.handle(req, res)) this.answer(res, 404, "Not found");
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    for (const agent of Object.values(this.agents)) agent.destroy();
    if (!this.server) return;
    const server = this.server;
    this.server = null;
    server.closeIdleConnections();
    const closed = promisify(server.close.bind(server))();
    // Downloads in progress are cut: a stopping bridge does not wait on slow clients.
    setTimeout(() => server.closeAllConnections(), 2_000).unref();
    await closed;
  }

  private async serve(req: IncomingMessage, res: ServerResponse, token: string, filename: string): Promise<Outcome> {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD");
      this.answer(res, 405, "Method not allowed");
      return "method";
    }
    const verified = this.deps.signer.verify(token, filename);
    if (!verified.ok) {
      this.answer(res, 404, "Not found");
      return verified.reason;
    }
    const { ref } = verified;
    if (this.deps.isRedacted(ref.eventId) || (ref.originalEventId !== undefined && this.deps.isRedacted(ref.originalEventId))) {
      this.answer(res, 404, "Not found (the message was deleted)");
      return "redacted";
    }
    if (this.inFlight >= MAX_CONCURRENT) {
      res.setHeader("Retry-After", "5");
      this.answer(res, 503, "Too many downloads at once; try again shortly");
      return "busy";
    }
    const client = req.socket.remoteAddress ?? "unknown";
    const mine = this.perClient.get(client) ?? 0;
    if (this.config.maxPerClient !== null && mine >= this.config.maxPerClient) {
      res.setHeader("Retry-After", "5");
      this.answer(res, 503, "Too many downloads at once from your address; try again shortly");
      return "client_busy";
    }
    this.inFlight++;
    this.perClient.set(client, mine + 1);
    try {
      return await this.download(req, res, ref.mxc, ref.filename);
    } finally {
      this.inFlight--;
      const left = (this.perClient.get(client) ?? 1) - 1;
      if (left > 0) this.perClient.set(client, left);
      else this.perClient.delete(client);
    }
  }

  private async download(req: IncomingMessage, res: ServerResponse, mxc: string, filename: string): Promise<Outcome> {
    const { server, mediaId } = parseMxc(mxc)!;
    const upstreamUrl = new URL(`${this.deps.homeserverUrl.replace(/\/+$/, "")}/_matrix/client/v1/media/download/${encodeURIComponent(server)}/${encodeURIComponent(mediaId)}`);

    // One controller for every way the download ends early: client gone, timeouts, the cap.
    const controller = new AbortController();
    let timedOut = false;
    let timer: NodeJS.Timeout | null = null;
    let slowCheck: NodeJS.Timeout | null = null;
    let tooSlow = false;
    let sent = 0;
    const arm = (ms: number) => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, ms);
    };
    // Which way a download ended is known here, not from the error the pipeline gives (that
    // differs between Node versions: a premature close on 20, the upstream's reset on 24).
    let clientGone = false;
    const onClose = () => {
      if (res.writableFinished) return;
      clientGone = true;
      controller.abort();
    };
    res.on("close", onClose);
    try {
      arm(this.config.connectTimeoutMs);
      let upstream: IncomingMessage;
      try {
        upstream = await new Promise<IncomingMessage>((resolve, reject) => {
          const https = upstreamUrl.protocol === "https:";
          const request = (https ? httpsRequest : httpRequest)(upstreamUrl, {
            headers: { Authorization: `Bearer ${this.deps.asToken}` },
            agent: this.agents[https ? "https:" : "http:"],
            signal: controller.signal,
          });
          request.once("response", resolve).once("error", reject).end();
        });
      } catch (err) {
        metrics.mediaHomeserverRequests.inc({ result: timedOut ? "timeout" : "error" });
        if (res.destroyed) return "aborted";
        log.warn("Media download failed", { mxc, error: timedOut ? "timed out" : (err as Error).message });
        this.answer(res, timedOut ? 504 : 502, "The homeserver did not give the file");
        return timedOut ? "timeout" : "upstream_error";
      }
      const status = upstream.statusCode ?? 0;
      metrics.mediaHomeserverRequests.inc({ result: String(status) });
      if (status !== 200) {
        upstream.destroy();
        const gone = status === 404;
        if (!gone) log.warn("Homeserver refused a media download", { mxc, status });
        this.answer(res, gone ? 404 : 502, gone ? "Not found" : "The homeserver did not give the file");
        return gone ? "not_found" : "upstream_error";
      }
      const declared = upstream.headers["content-length"];
      const length = declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : null;
      if (length !== null && length > this.config.maxBytes) {
        upstream.destroy();
        this.answer(res, 413, `The file is larger than this bridge serves (${this.config.maxBytes} bytes)`);
        return "too_large";
      }
      res.writeHead(200, mediaHeaders(upstream.headers["content-type"] ?? null, filename, length));
      if (req.method === "HEAD") {
        upstream.destroy();
        res.end();
        return "head";
      }
      slowCheck = this.watchRate(() => sent, () => {
        tooSlow = true;
        controller.abort();
      });
      const outcome = await this.stream(upstream, res, (bytes) => ((sent = bytes), arm(this.config.idleTimeoutMs)), () => timedOut, () => clientGone);
      return tooSlow && outcome !== "served" ? "too_slow" : outcome;
    } finally {
      // No abort here: a finished download's keep-alive socket goes back to the agent.
      if (timer) clearTimeout(timer);
      if (slowCheck) clearInterval(slowCheck);
      res.off("close", onClose);
    }
  }

  /**
   * Once a second, after a grace of idleTimeoutMs: below minBytesPerSecond on average since the
   * body started, the download is cut (each chunk resets the idle timer, so a trickle would
   * hold a slot for ever). Null when there is no floor.
   */
  private watchRate(bytes: () => number, cut: () => void): NodeJS.Timeout | null {
    const floor = this.config.minBytesPerSecond;
    if (floor === null) return null;
    const started = Date.now();
    const grace = this.config.idleTimeoutMs;
    const check = setInterval(() => {
      const elapsed = Date.now() - started;
      // Checked from a second past the grace: a stall within it is the idle timeout's (a "timeout").
      if (elapsed >= grace + 1_000 && bytes() < (floor * elapsed) / 1000) {
        clearInterval(check);
        cut();
      }
    }, 1_000);
    check.unref();
    return check;
  }

  /** Copies the body to the client with backpressure, counting bytes against the cap. */
  private async stream(body: IncomingMessage, res: ServerResponse, touched: (bytes: number) => void, timedOut: () => boolean, clientGone: () => boolean = () => false): Promise<Outcome> {
    let bytes = 0;
    const max = this.config.maxBytes;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        if (bytes > max) return callback(new TooLarge());
        touched(bytes);
        callback(null, chunk);
      },
    });
    touched(0);
    try {
      await pipeline(body, meter, res);
      return "served";
    } catch (err) {
      // The headers are out: the only way left to say "incomplete" is to cut the connection.
      res.destroy();
      if (err instanceof TooLarge) return "too_large";
      if (timedOut()) return "timeout";
      return clientGone() || (err as NodeJS.ErrnoException).code === "ERR_STREAM_PREMATURE_CLOSE" ? "aborted" : "upstream_error";
    } finally {
      metrics.mediaBytes.inc(Math.min(bytes, max));
    }
  }

  private answer(res: ServerResponse, status: number, text: string): void {
    if (res.headersSent) return void res.destroy();
    res.writeHead(status, ERROR_HEADERS);
    res.end(`${text}\n`);
  }
}
