/**
 * The one schema of the bridge's config file. It gives the TypeScript types (`BridgeConfig`),
 * the validation (with key-path errors, see load.ts) and the defaults. Every object is
 * strict, so a misspelt key is an error rather than a silently ignored setting; a section
 * left out entirely is filled from its keys' defaults (`prefault({})`).
 */
import { z } from "zod";
import { createRequire } from "node:module";

const encodingExists = (createRequire(import.meta.url)("iconv-lite") as { encodingExists(e: string): boolean }).encodingExists;

const positiveInt = () => z.number().int().positive();
const port = () => z.number().int().min(1).max(65535);

/** Channel names as IRC servers accept them: a prefix, then no space, comma or BEL. */
export const CHANNEL_NAME = /^[#&!+][^\s,\x07\0\r\n]{1,199}$/;
/** Matrix room IDs: `!opaque:server.name`, or `!hash` from room version 12 on. */
export const ROOM_ID = /^![^\s:]+(:\S+)?$/; // room version 12 IDs have no server part
const NETWORK_ID = /^[a-z0-9][a-z0-9_-]{0,31}$/;

const logging = z
  .object({
    level: z.enum(["error", "warn", "info", "debug"]).default("info"),
    format: z.enum(["console", "json"]).default("console"),
    file: z.string().min(1).nullable().default(null),
  })
  .strict();

const homeserver = z
  .object({
    url: z.url({ protocol: /^https?$/, error: "expected an http(s) URL such as http://localhost:8008" }),
    domain: z.string().regex(/^[a-zA-Z0-9.:[\]-]+$/, "expected a server name such as example.org"),
    requestTimeoutMs: positiveInt().default(30_000),
  })
  .strict();

const appservice = z
  .object({
    bindAddress: z.string().min(1).default("127.0.0.1"),
    port: port().default(9995),
    id: z.string().regex(/^[A-Za-z0-9_.-]+$/, "expected letters, digits, _, . or -").default("irc"),
    botLocalpart: z.string().regex(/^[a-z0-9._=\-/]+$/, "expected a Matrix localpart such as ircbot").default("ircbot"),
  })
  .strict();

const store = z
  .object({
    engine: z.enum(["nedb", "postgres"]).default("nedb"),
    dataDir: z.string().min(1).default("./data"),
    /** For engine postgres: a libpq URL such as postgresql://bridge:pw@127.0.0.1:5432/bridge. */
    connectionString: z.string().regex(/^postgres(ql)?:\/\/\S+$/, "expected a URL such as postgresql://user:password@host:5432/database").nullable().default(null),
    poolSize: positiveInt().max(1000).default(10),
    maxMessageLinks: positiveInt().default(100_000),
  })
  .strict()
  .refine((s) => s.engine !== "postgres" || s.connectionString !== null, { path: ["connectionString"], message: "is required with engine postgres" });

const metrics = z
  .object({
    enabled: z.boolean().default(true),
    // Set: /metrics, /health and /ready are served here and not on the appservice port.
    port: port().nullable().default(null),
    bindAddress: z.string().min(1).default("127.0.0.1"),
  })
  .strict();

/** What /ready demands (see src/ops/Readiness.ts). */
const health = z
  .object({
    homeserverPingIntervalMs: positiveInt().default(15_000),
    homeserverMaxSilenceSeconds: positiveInt().default(60),
    maxJournalAgeSeconds: positiveInt().default(900),
    storeTimeoutMs: positiveInt().default(5_000),
  })
  .strict();

/** Bounds of the queues towards Matrix; beyond them new items are dropped, counted and logged. */
const queues = z
  .object({
    roomMaxDepth: positiveInt().default(1_000),
    totalMaxDepth: positiveInt().default(50_000),
    noticeMaxDepth: positiveInt().default(1_000),
  })
  .strict();

const mapping = z
  .object({
    roomIds: z.array(z.string().regex(ROOM_ID, "expected a room ID such as !abc:example.org")).min(1),
    key: z.string().min(1).nullable().default(null),
  })
  .strict();

const tls = z
  .object({
    enabled: z.boolean().default(true),
    rejectUnauthorized: z.boolean().default(true),
  })
  .strict();

const sendRate = z
  .object({
    burst: positiveInt().default(5),
    linesPerSecond: z.number().positive().default(2),
  })
  .strict();

/** A token bucket per requester and per IRC nick: `burst` at once, then `perMinute`. */
const rateLimit = (burst: number, perMinute: number) =>
  z
    .object({
      burst: positiveInt().default(burst),
      perMinute: z.number().positive().default(perMinute),
    })
    .strict()
    .prefault({});

const pool = z
  .object({
    // Finite by default: an IRC network limits connections per host (see config.sample.yaml).
    maxClients: z.number().int().min(0).default(2000),
    idleTimeoutMs: z.number().int().min(0).default(0),
    reconnectActiveWithinMs: z.number().int().min(0).default(7 * 24 * 60 * 60_000),
    connectsPerSecond: z.number().positive().default(10),
    maxConnectsInFlight: positiveInt().default(20),
    throttlePauseMs: positiveInt().default(60_000),
    dropNoticeAfterMs: z.number().int().min(0).default(30_000),
    offlineQueue: z
      .object({
        maxMessages: positiveInt().default(5000),
        ttlMs: positiveInt().default(10 * 60_000),
      })
      .strict()
      .prefault({}),
  })
  .strict();


const membership = z
  .object({
    syncOnJoin: z.boolean().default(true),
    ghostJoinsPerSecond: z.number().positive().default(10),
    netsplitTimeoutMs: z.number().int().min(0).default(5 * 60_000),
    coalesceMs: z.number().int().min(0).default(1_000),
    removeOnJoinFailure: z.boolean().default(false),
  })
  .strict();

/** Channel patterns for allow/deny lists: a channel name where `*` and `?` are wildcards. */
const channelPattern = z.string().regex(/^[#&!+*?][^\s,\x07]*$/, "expected a channel name or pattern such as #rust or #rust-*");

const portals = z
  .object({
    enabled: z.boolean().default(true),
    allow: z.array(channelPattern).default([]),
    deny: z.array(channelPattern).default([]),
    joinRule: z.enum(["public", "invite"]).default("public"),
    publish: z.boolean().default(true),
    federate: z.boolean().default(true),
    roomVersion: z.string().regex(/^[a-z0-9.-]+$/, "expected a room version such as 12").nullable().default(null),
    rateLimit: rateLimit(5, 2),
  })
  .strict();

/** Chanop sync: IRC channel prefixes → Matrix power levels, channel modes → room settings. */
const chanops = z
  .object({
    modePowerMap: z
      .record(z.string().regex(/^[A-Za-z]$/, "expected one mode letter such as o"), z.number().int().min(0).max(100))
      .default({ q: 95, a: 75, o: 50, h: 25, v: 1 }),
    ghostPowerLevels: z.boolean().default(true),
    matrixToIrcModes: z.boolean().default(false),
    powerLevelWindowMs: z.number().int().min(0).default(1_000),
  })
  .strict();

const privateMessages = z
  .object({
    enabled: z.boolean().default(true),
    federate: z.boolean().default(true),
    rateLimit: rateLimit(5, 3),
    reinviteAfterMs: z.number().int().min(0).default(60 * 60_000),
  })
  .strict();

const ident = z
  .object({
    enabled: z.boolean().default(false),
    bindAddress: z.string().min(1).default("0.0.0.0"),
    port: port().default(1113),
  })
  .strict();

/**
 * Who may use the bridge: a user ID, a server name, or "*" for everyone; the most specific
 * entry wins. Left out: users of `homeserver.domain` only (filled in by configSchema below).
 */
const permissions = z
  .record(
    z.string().regex(/^(\*|@[^:\s]+:[^\s]+|[a-zA-Z0-9.:[\]-]+)$/, "expected a user ID (@alice:example.org), a server name (example.org) or *"),
    z.enum(["none", "user", "admin"]),
  )
  .optional();

const credentials = z
  .object({
    keyFile: z.string().min(1).nullable().default(null),
  })
  .strict();

/**
 * The provisioning HTTP API (src/http/): off unless enabled, on the appservice listener under
 * `pathPrefix` or on a listener of its own (`port`). See config.sample.yaml.
 */
const provisioningHttp = z
  .object({
    enabled: z.boolean().default(false),
    secretFile: z.string().min(1).nullable().default(null),
    port: port().nullable().default(null),
    bindAddress: z.string().min(1).default("127.0.0.1"),
    pathPrefix: z
      .string()
      .regex(/^(\/[A-Za-z0-9._~-]+)+$/, "expected a path such as /_matrix/provision (no trailing slash)")
      .refine((p) => !p.startsWith("/_matrix/app"), "expected a path outside /_matrix/app, which is the homeserver's")
      .default("/_matrix/provision"),
    corsOrigin: z.string().min(1).default("*"),
    maxBodyBytes: positiveInt().max(1024 * 1024).default(16 * 1024),
    rateLimit: rateLimit(20, 30),
    sessionLifetimeSeconds: positiveInt().default(24 * 60 * 60),
    openId: z
      .object({
        serverUrls: z.record(z.string().regex(/^[A-Za-z0-9.:[\]-]+$/, "expected a server name such as example.org"), z.url({ protocol: /^https?$/, error: "expected an http(s) URL" })).default({}),
        allowPrivateAddresses: z.boolean().default(false),
        timeoutMs: positiveInt().default(10_000),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((h, ctx) => {
    if (h.enabled && !h.secretFile) ctx.addIssue({ code: "custom", path: ["secretFile"], message: "is required when provisioning.http.enabled is true" });
  });

/** Rooms bridged by their own moderators (`!irc link`, and the provisioning API), with an op's approval. */
const provisioning = z
  .object({
    enabled: z.boolean().default(true),
    requestTimeoutSeconds: positiveInt().default(300),
    maxRoomsPerNetwork: positiveInt().nullable().default(null),
    http: provisioningHttp.prefault({}),
  })
  .strict();

/**
 * Media links (Matrix files → IRC): served by the bridge at `publicUrl`, on the appservice
 * port, or on `bindAddress`/`port` of their own when `port` is set.
 */
const media = z
  .object({
    publicUrl: z
      .url({ protocol: /^https?$/, error: "expected the http(s) URL where IRC users reach the bridge's media links, such as https://example.org/irc-media/" })
      .refine((u) => !/[?#]/.test(u), "expected a URL without a query or fragment")
      .nullable()
      .default(null),
    signingKeyFile: z.string().min(1).nullable().default(null),
    linkLifetimeSeconds: positiveInt().nullable().default(null),
    maxBytes: positiveInt().default(100 * 1024 * 1024),
    bindAddress: z.string().min(1).nullable().default(null),
    port: port().nullable().default(null),
    connectTimeoutMs: positiveInt().default(10_000),
    idleTimeoutMs: positiveInt().default(30_000),
    maxPerClient: positiveInt().nullable().default(8),
    minBytesPerSecond: positiveInt().nullable().default(8192),
  })
  .strict();

/** The end-to-end canary of one network (src/ops/Canary.ts): on when a channel is set. */
const canary = z
  .object({
    enabled: z.boolean().default(true),
    channel: z.string().regex(CHANNEL_NAME, "expected a channel name such as #bridge-canary").nullable().default(null),
    nick: z.string().regex(/^[A-Za-z[\]\\`_^{|}][A-Za-z0-9[\]\\`_^{|}-]{0,29}$/, "expected a valid IRC nick").nullable().default(null),
    intervalMs: positiveInt().default(60_000),
    maxMissed: positiveInt().default(3),
  })
  .strict();

const template = (variable: string) =>
  z.string().includes(variable, { message: `expected a template containing ${variable}` });

const network = z
  .object({
    name: z.string().min(1),
    address: z.string().min(1),
    port: port().default(6697),
    tls: tls.prefault({}),
    botNick: z.string().regex(/^[A-Za-z[\]\\`_^{|}][A-Za-z0-9[\]\\`_^{|}-]{0,29}$/, "expected a valid IRC nick"),
    botUsername: z.string().regex(/^[A-Za-z0-9_.-]{1,10}$/, "expected 1-10 letters, digits, '_', '.' or '-'").default("matrixbot"),
    ghostUserTemplate: template("$NICK"),
    aliasTemplate: template("$CHANNEL"),
    puppetNickTemplate: z
      .string()
      .refine((s) => s.includes("$LOCALPART") || s.includes("$DISPLAY"), "expected a template containing $LOCALPART or $DISPLAY")
      .default("$LOCALPART[m]"),
    quitMessage: z.string().default("Matrix bridge shutting down"),
    connectTimeoutMs: positiveInt().default(20_000),
    sendRate: sendRate.prefault({}),
    pool: pool.prefault({}),
    membership: membership.prefault({}),
    portals: portals.prefault({}),
    chanops: chanops.prefault({}),
    privateMessages: privateMessages.prefault({}),
    canary: canary.prefault({}),
    // Text fidelity (format/): see config.sample.yaml.
    encodingFallback: z
      .string()
      .refine((e) => encodingExists(e), "expected an encoding iconv-lite knows, such as latin1 or cp1252")
      .nullable()
      .default(null),
    lineLimit: positiveInt().default(3),
    maxLineLimit: positiveInt().default(10),
    edits: z.enum(["diff", "full", "off"]).default("diff"),
    // IRCv3 interactions, each where the server offers it: see config.sample.yaml.
    ircv3: z
      .object({ reactions: z.boolean().default(true), typing: z.boolean().default(true), redactions: z.boolean().default(true) })
      .strict()
      .prefault({}),
    ipv6Prefix: z
      .string()
      .regex(/^[0-9a-fA-F:]+\/(\d{1,3})$/, "expected an IPv6 prefix such as 2001:db8:1234::/64")
      .nullable()
      .default(null),
    mappings: z
      .record(z.string().regex(CHANNEL_NAME, "expected a channel name such as #chan"), mapping)
      .default({}),
  })
  .strict()
  // The canary speaks every minute: never in a channel people read.
  .refine((n) => !n.canary.channel || !Object.keys(n.mappings).some((c) => c.toLowerCase() === n.canary.channel!.toLowerCase()), {
    message: "the canary channel must be a channel of its own, not a mapped one",
    path: ["canary", "channel"],
  });

export const configSchema = z
  .object({
    homeserver,
    appservice: appservice.prefault({}),
    store: store.prefault({}),
    logging: logging.prefault({}),
    metrics: metrics.prefault({}),
    health: health.prefault({}),
    queues: queues.prefault({}),
    ident: ident.prefault({}),
    permissions,
    credentials: credentials.prefault({}),
    provisioning: provisioning.prefault({}),
    media: media.prefault({}),
    networks: z
      .record(z.string().regex(NETWORK_ID, "expected a lower-case network id such as libera"), network)
      .refine((n) => Object.keys(n).length > 0, "expected at least one network"),
  })
  .strict()
  .refine((c) => c.metrics.port === null || c.metrics.port !== c.appservice.port, {
    message: "must differ from appservice.port (null serves metrics and health on the appservice port)",
    path: ["metrics", "port"],
  })
  // Safe by default: only the homeserver's own users until the operator lets others in.
  .transform((c) => ({ ...c, permissions: c.permissions ?? { [c.homeserver.domain]: "user" as const } }));

export type BridgeConfig = z.infer<typeof configSchema>;
export type NetworkConfig = BridgeConfig["networks"][string];
export type LoggingConfig = BridgeConfig["logging"];
export type ProvisioningHttpConfig = BridgeConfig["provisioning"]["http"];
export type MediaConfig = BridgeConfig["media"];
