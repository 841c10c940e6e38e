/**
 * The provisioning HTTP API, compatible with matrix-appservice-irc's: integration managers and
 * widgets link existing Matrix rooms to IRC channels through it. This file is only the HTTP
 * layer (routes, auth, limits, shapes, errors); the checks, the operator's approval and the
 * link itself belong to the LinkProvisioner it is given.
 *
 * Auth: `Authorization: Bearer <shared secret>` (an integration manager, acting for the user
 * named in `user_id`), or a session token from `POST v1/exchange_openid` (a widget, acting for
 * the user its homeserver vouched for; a `user_id` in the body cannot change that).
 * Off unless `provisioning.http.enabled`; served on the appservice listener under `pathPrefix`,
 * or on its own listener when `port` is set.
 */
import { timingSafeEqual, createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import type { Server } from "node:http";
import { promisify } from "node:util";
import express, { type Application, type NextFunction, type Request, type RequestHandler, type Response, type Router } from "express";
import type { z } from "zod";
import { ConfigError } from "../config/load.js";
import type { ProvisioningHttpConfig } from "../config/schema.js";
import { getLogger } from "../logging.js";
import { createAsServer, finalHandlers, jsonBody } from "../matrix/asHttp.js";
import { metrics } from "../metrics/metrics.js";
import { RateLimiter } from "../bridge/RateLimiter.js";
import { ProvisioningError, type LinkProvisioner, type NetworkInfo } from "../provisioning/types.js";
import type { DataStore } from "../store/DataStore.js";
import { OpenIdError, OpenIdVerifier } from "./openId.js";
import { ProvisioningSessions } from "./ProvisioningSessions.js";
import { describeBodyError, exchangeOpenIdBody, linkBody, queryLinkBody, roomIdParam, unlinkBody, USER_ID } from "./provisioningBodies.js";

const log = getLogger("http/provisioning");

/** A provisioner call that takes longer than this is answered 504 (the flow carries on). */
const HANDLER_TIMEOUT_MS = 30_000;
const MIN_SECRET_LENGTH = 32;
const SESSION_PRUNE_MS = 60 * 60_000;

/** An answer other than 200, with the reference bridge's error JSON. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errcode: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** Who is calling: the user acted for (null: the secret without a user) and how they proved it. */
interface Caller {
  userId: string | null;
  via: "secret" | "session";
}

type Handler = (req: Request, caller: Caller) => Promise<unknown> | unknown;

export interface ProvisioningApiOptions {
  /** The shared secret itself (tests); otherwise read from `secretFile`. */
  secret?: string;
  /** Who holds an OpenID token (tests pass a fake). */
  openId?: { userOf(matrixServer: string, openIdToken: string): Promise<string> };
  now?: () => number;
}

/** Reads the shared secret: owner-only file, at least 32 characters (trailing newline ignored). */
export function readSecretFile(path: string): string {
  let text: string;
  let mode: number;
  try {
    text = readFileSync(path, "utf8").trim();
    mode = statSync(path).mode;
  } catch (err) {
    throw new ConfigError("<config>", [`provisioning.http.secretFile: cannot read ${path}: ${(err as Error).message}`]);
  }
  if (process.platform !== "win32" && (mode & 0o077) !== 0) {
    throw new ConfigError("<config>", [`provisioning.http.secretFile: ${path} is readable or writable by others (mode ${(mode & 0o777).toString(8)}); chmod 600 ${path}`]);
  }
  if (text.length < MIN_SECRET_LENGTH || /\s/.test(text)) {
    throw new ConfigError("<config>", [`provisioning.http.secretFile: ${path} must hold one token of at least ${MIN_SECRET_LENGTH} characters without spaces (openssl rand -hex 32 > ${path})`]);
  }
  return text;
}

const digest = (text: string) => createHash("sha256").update(text).digest();

export class ProvisioningApi {
  readonly router: Router;
  private readonly secretDigest: Buffer;
  private readonly sessions: ProvisioningSessions;
  private readonly openId: NonNullable<ProvisioningApiOptions["openId"]>;
  /** Per user (or session); the secret without a user shares one bucket ten times as large. */
  private readonly perUser: RateLimiter;
  private readonly anonymous: RateLimiter;
  /** Per address, for calls not yet authenticated: exchange_openid and refused tokens. */
  private readonly perAddress: RateLimiter;
  private server: Server | null = null;
  private pruneTimer: NodeJS.Timeout | null = null;

  /** Mounts the API on `appserviceApp` unless it has a port of its own (then `start` listens). */
  constructor(
    private readonly config: ProvisioningHttpConfig,
    private readonly provisioner: LinkProvisioner,
    store: DataStore,
    appserviceApp: Application | null,
    options: ProvisioningApiOptions = {},
  ) {
    const secret = options.secret ?? readSecretFile(config.secretFile ?? "");
    this.secretDigest = digest(secret);
    const now = options.now ?? Date.now;
    this.sessions = new ProvisioningSessions(store, config.sessionLifetimeSeconds * 1000, now);
    this.openId = options.openId ?? new OpenIdVerifier(config.openId);
    this.perUser = new RateLimiter(config.rateLimit, undefined, now);
    this.anonymous = new RateLimiter({ burst: config.rateLimit.burst * 10, perMinute: config.rateLimit.perMinute * 10 }, undefined, now);
    this.perAddress = new RateLimiter(config.rateLimit, undefined, now);
    this.router = this.buildRouter();
    if (config.port === null && appserviceApp) appserviceApp.use(config.pathPrefix, this.router);
  }

  /** Listens on the API's own port (if it has one) and starts forgetting expired sessions. */
  async start(): Promise<void> {
    await this.sessions.prune().catch((err: Error) => log.warn("Pruning provisioning sessions failed", { error: err.message }));
    this.pruneTimer = setInterval(() => void this.sessions.prune().catch(() => undefined), SESSION_PRUNE_MS);
    this.pruneTimer.unref();
    const { port, bindAddress, pathPrefix } = this.config;
    if (port === null) {
      log.info("Provisioning API served on the appservice listener", { pathPrefix });
      return;
    }
    const app = express();
    app.disable("x-powered-by");
    app.set("query parser", "simple");
    app.set("case sensitive routing", true);
    app.use(pathPrefix, this.router);
    const [notFound, onError] = finalHandlers();
    app.use(notFound);
    app.use(onError);
    const server = createAsServer(app);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, bindAddress, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.server = server;
    log.info("Provisioning API listening", { address: bindAddress, port, pathPrefix });
  }

  async stop(): Promise<void> {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeIdleConnections();
    await promisify(server.close.bind(server))().catch(() => undefined);
  }

  private buildRouter(): Router {
    const router = express.Router({ caseSensitive: true });
    const body = jsonBody(this.config.maxBodyBytes);
    const postBody: RequestHandler = (req, res, next) => (req.method === "POST" ? body(req, res, next) : next());
    router.use((req, res, next) => this.cors(req, res, next));
    router.post("/v1/exchange_openid", (req, res, next) => this.limitAddress(req, res, next), body, this.route("exchange_openid", (req) => this.exchangeOpenId(req), false));
    router.use("/v1", postBody);
    router.get("/v1/querynetworks", this.route("querynetworks", () => this.queryNetworks()));
    router.post("/v1/querylink", this.route("querylink", (req) => this.queryLink(req)));
    router.post("/v1/link", this.route("link", (req, caller) => this.link(req, caller)));
    router.post("/v1/unlink", this.route("unlink", (req, caller) => this.unlink(req, caller)));
    router.get("/v1/listlinks/:roomId", this.route("listlinks", (req) => this.listLinks(req)));
    router.get("/v1/limits", this.route("limits", () => this.limits()));
    const methods: [string, string][] = [
      ["/v1/exchange_openid", "POST"],
      ["/v1/querynetworks", "GET"],
      ["/v1/querylink", "POST"],
      ["/v1/link", "POST"],
      ["/v1/unlink", "POST"],
      ["/v1/listlinks/:roomId", "GET"],
      ["/v1/limits", "GET"],
    ];
    for (const [path, allowed] of methods) {
      router.all(path, (_req, res) => {
        res.setHeader("Allow", allowed);
        this.send(res, "other", new ApiError(405, "M_UNRECOGNIZED", "Method not allowed on this path"));
      });
    }
    return router;
  }

  /** Widgets call from browsers: answer preflights, and let the answers be read. */
  private cors(req: Request, res: Response, next: NextFunction): void {
    res.setHeader("Access-Control-Allow-Origin", this.config.corsOrigin);
    if (this.config.corsOrigin !== "*") res.setHeader("Vary", "Origin");
    res.setHeader("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Requested-With");
    res.setHeader("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    if (req.method !== "OPTIONS") return next();
    res.setHeader("Access-Control-Max-Age", "600");
    res.status(204).end();
  }

  private limitAddress(req: Request, res: Response, next: NextFunction): void {
    const key = `addr:${req.socket.remoteAddress ?? "?"}`;
    if (this.perAddress.take(key)) return next();
    this.send(res, "exchange_openid", this.limited(this.perAddress, key));
  }

  private limited(limiter: RateLimiter, key: string): ApiError {
    metrics.rateLimited.inc({ kind: "provisioning", network: "" });
    const retryAfterMs = Math.max(1, limiter.retryAfterMs(key));
    return new ApiError(429, "M_AS_LIMIT_EXCEEDED", "Too many requests; try again later", { retry_after_ms: retryAfterMs });
  }

  /** One route: authenticate (unless `authenticated` is false), rate-limit, run, answer. */
  private route(name: string, handler: Handler, authenticated = true): RequestHandler {
    return (req, res) => {
      const run = async () => {
        const caller: Caller = authenticated ? await this.authenticate(req) : { userId: null, via: "session" };
        if (authenticated) {
          const [limiter, key] = caller.userId ? [this.perUser, `user:${caller.userId}`] : [this.anonymous, "secret"];
          if (!limiter.take(key)) throw this.limited(limiter, key);
        }
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new ApiError(504, "M_UNKNOWN", "The bridge did not finish in time; the request may still complete")), HANDLER_TIMEOUT_MS);
        });
        try {
          return await Promise.race([Promise.resolve(handler(req, caller)), deadline]);
        } finally {
          clearTimeout(timer);
        }
      };
      run().then(
        (result) => {
          metrics.provisioningRequests.inc({ route: name, status: "200" });
          res.json(result ?? {});
        },
        (err: Error) => this.send(res, name, err),
      );
    };
  }

  /** Answers an error with `{ errcode, error }` (and the reference's extra fields). */
  private send(res: Response, route: string, err: Error): void {
    let answer: ApiError;
    if (err instanceof ApiError) answer = err;
    else if (err instanceof ProvisioningError) answer = new ApiError(err.status, err.code, err.message);
    else {
      log.error("Provisioning request failed", { route, error: err.message });
      answer = new ApiError(500, "M_UNKNOWN", "Internal error");
    }
    metrics.provisioningRequests.inc({ route, status: String(answer.status) });
    if (res.headersSent) return void res.end();
    if (answer.status === 429 && typeof answer.extra.retry_after_ms === "number") res.setHeader("Retry-After", String(Math.ceil(answer.extra.retry_after_ms / 1000)));
    res.status(answer.status).json({ errcode: answer.errcode, error: answer.message, ...answer.extra });
  }

  /** The shared secret (user from `user_id`) or a live session (user from the session). */
  private async authenticate(req: Request): Promise<Caller> {
    const token = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "")?.[1];
    const bodyUser = this.claimedUser(req);
    if (token && timingSafeEqual(digest(token), this.secretDigest)) {
      if (bodyUser !== null && !USER_ID.test(bodyUser)) throw new ApiError(400, "M_BAD_JSON", "user_id: expected a user ID such as @alice:example.org");
      return { userId: bodyUser, via: "secret" };
    }
    const userId = token ? await this.sessions.userOf(token) : null;
    if (!userId) {
      // Refused tokens cost the address: guessing is slowed down, and so is a misconfigured client.
      const key = `addr:${req.socket.remoteAddress ?? "?"}`;
      if (!this.perAddress.take(key)) throw this.limited(this.perAddress, key);
      throw new ApiError(401, "M_AS_BAD_TOKEN", token ? "Unknown or expired token" : "Missing Authorization: Bearer <token>");
    }
    if (bodyUser !== null && bodyUser !== userId) throw new ApiError(403, "M_FORBIDDEN", "user_id does not match the session's user");
    return { userId, via: "session" };
  }

  /** The user an integration manager acts for: `user_id` (or `userId`) in the body, or in the query of a GET. */
  private claimedUser(req: Request): string | null {
    const source = (req.method === "GET" ? req.query : req.body) as Record<string, unknown> | undefined;
    const value = source && typeof source === "object" ? (source.user_id ?? source.userId) : undefined;
    if (value === undefined || value === null) return null;
    return typeof value === "string" ? value : "";
  }

  private parse<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new ApiError(400, "M_BAD_JSON", "The body must be a JSON object");
    const result = schema.safeParse(value, { reportInput: true });
    if (!result.success) throw new ApiError(400, "M_BAD_JSON", describeBodyError(result.error));
    return result.data;
  }

  private requireUser(caller: Caller): string {
    if (!caller.userId) throw new ApiError(400, "M_BAD_JSON", "user_id: is required (the Matrix user the request is made for)");
    return caller.userId;
  }

  /** The network a reference client names by its IRC server's host (or, as a courtesy, by our network id). */
  private network(server: string): NetworkInfo {
    const networks = this.provisioner.networks();
    const host = server.toLowerCase();
    const found = networks.find((n) => n.domain.toLowerCase() === host) ?? networks.find((n) => n.networkId === server);
    if (!found) throw new ApiError(404, "IRC_UNKNOWN_NETWORK", `No network with the server ${server} is bridged here`);
    return found;
  }

  private async exchangeOpenId(req: Request): Promise<unknown> {
    const body = this.parse(exchangeOpenIdBody, req.body);
    let userId: string;
    try {
      userId = await this.openId.userOf(body.matrixServer, body.openIdToken);
    } catch (err) {
      if (!(err instanceof OpenIdError)) throw err;
      log.info("OpenID token refused", { matrixServer: body.matrixServer, reason: err.message });
      throw new ApiError(401, "M_AS_BAD_OPENID", `The OpenID token could not be verified: ${err.message}`);
    }
    const session = await this.sessions.create(userId);
    log.info("Provisioning session opened", { userId });
    return { token: session.token, userId, expires_ts: session.expiresAt };
  }

  private queryNetworks(): unknown {
    return {
      servers: this.provisioner.networks().map((n) => ({
        network_id: n.networkId,
        bot_user_id: n.botUserId,
        desc: n.name,
        fields: { domain: n.domain },
      })),
    };
  }

  private async queryLink(req: Request): Promise<unknown> {
    const body = this.parse(queryLinkBody, req.body);
    const network = this.network(body.remote_room_server);
    return { operators: await this.provisioner.channelOps(network.networkId, body.remote_room_channel) };
  }

  private async link(req: Request, caller: Caller): Promise<unknown> {
    const body = this.parse(linkBody, req.body);
    const userId = this.requireUser(caller);
    const network = this.network(body.remote_room_server);
    log.info("Link requested", { userId, via: caller.via, roomId: body.matrix_room_id, network: network.networkId, channel: body.remote_room_channel, opNick: body.op_nick });
    const outcome = await this.provisioner.requestLink({
      networkId: network.networkId,
      channel: body.remote_room_channel,
      roomId: body.matrix_room_id,
      userId,
      opNick: body.op_nick,
      key: body.key ?? null,
    });
    // The reference answers `{}`; the extra fields say what happens next.
    return outcome.status === "pending" ? { status: "pending", op_nick: outcome.opNick, expires_ts: outcome.expiresAt } : { status: "linked" };
  }

  private async unlink(req: Request, caller: Caller): Promise<unknown> {
    const body = this.parse(unlinkBody, req.body);
    const userId = this.requireUser(caller);
    const network = this.network(body.remote_room_server);
    log.info("Unlink requested", { userId, via: caller.via, roomId: body.matrix_room_id, network: network.networkId, channel: body.remote_room_channel });
    await this.provisioner.unlink({ networkId: network.networkId, channel: body.remote_room_channel, roomId: body.matrix_room_id, userId });
    return {};
  }

  private listLinks(req: Request): unknown {
    const roomId = roomIdParam.safeParse(req.params.roomId);
    if (!roomId.success) throw new ApiError(400, "M_BAD_JSON", "roomId: expected a room ID such as !abc:example.org");
    const domains = new Map(this.provisioner.networks().map((n) => [n.networkId, n.domain]));
    return this.provisioner.listLinks(roomId.data).map((l) => ({
      matrix_room_id: l.roomId,
      remote_room_channel: l.channel,
      remote_room_server: domains.get(l.networkId) ?? l.networkId,
      network_id: l.networkId,
      origin: l.origin,
    }));
  }

  private limits(): unknown {
    const { count, limit } = this.provisioner.limits();
    return { count, limit: limit ?? false };
  }
}
