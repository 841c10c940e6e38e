/**
 * The whole system on loopback for one test file: InspIRCd, Synapse with the bridge's
 * registration, and the bridge as a child process.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { parseConfig } from "../../src/config/load.js";
import type { BridgeConfig } from "../../src/config/schema.js";
import { buildRegistration, writeRegistration, type Registration } from "../../src/registration.js";
import { BridgeProcess } from "./bridgeProcess.js";
import { InspIRCd } from "./inspircd.js";
import { IrcTestClient } from "./ircClient.js";
import { MatrixTestClient } from "./matrixClient.js";
import { freePort } from "./ports.js";
import { PostgresCluster } from "./postgres.js";
import { Synapse } from "./synapse.js";
import { TcpProxy } from "./tcpProxy.js";

export const NETWORK = "testnet";

export interface StackOptions {
  /** InspIRCd modules to leave out (e.g. ircv3_msgid, to test the fallback without msgids). */
  ircdWithoutModules?: string[];
  /** Put a TcpProxy between the bridge and the IRCd. */
  proxy?: boolean;
  /** The IRCd also listens on [::1], and the bridge connects there. */
  ipv6?: boolean;
  /** See InspIRCdOptions.quitPrefix. */
  quitPrefix?: boolean;
  /** See InspIRCdOptions.extraModules. */
  extraModules?: string[];
  /** See InspIRCdOptions.floodLimits. */
  floodLimits?: boolean;
  /** Put a TcpProxy between the bridge and Synapse's client API (the bridge's calls to the homeserver). */
  homeserverProxy?: boolean;
  /** An IRC server of the test's own (e.g. HostileIrcd) instead of InspIRCd, which is then not started. */
  ircServer?: { port: number };
  /** The bridge's store engine; default: E2E_STORE (nedb or postgres), else nedb. */
  store?: "nedb" | "postgres";
  /** With the postgres engine: run the cluster with fsync on (tests of durability). */
  postgresFsync?: boolean;
}

/** The store engine e2e stacks use unless a test asks for one (E2E_STORE=postgres runs the suite on PostgreSQL). */
export function e2eStoreEngine(): "nedb" | "postgres" {
  const engine = process.env.E2E_STORE ?? "nedb";
  if (engine !== "nedb" && engine !== "postgres") throw new Error(`E2E_STORE must be nedb or postgres, not ${engine}`);
  return engine;
}

export class Stack {
  readonly ircd: InspIRCd;
  readonly synapse: Synapse;
  readonly bridge: BridgeProcess;
  registration!: Registration;
  bridgePort = 0;
  private readonly matrixUsers: MatrixTestClient[] = [];
  private readonly ircUsers: IrcTestClient[] = [];
  mappings: Record<string, { roomIds: string[]; key?: string | null }> = {};
  readonly ircHost: string;
  /** Merged into the top level of the bridge's config (e.g. ident). */
  configOverrides: Record<string, unknown> = {};
  /** Merged into the test network's config (e.g. pool limits). */
  networkOverrides: Record<string, unknown> = {};
  proxy: TcpProxy | null = null;
  /** Between the bridge and Synapse, with `homeserverProxy` (Synapse still reaches the bridge directly). */
  homeserverProxy: TcpProxy | null = null;
  private readonly ircServer: { port: number } | undefined;
  /** The stack's own PostgreSQL cluster, with the postgres engine. */
  postgres: PostgresCluster | null = null;
  /** The bridge's database, with the postgres engine. */
  connectionString: string | null = null;

  constructor(
    readonly dir: string,
    options: StackOptions = {},
  ) {
    this.ircd = new InspIRCd(join(dir, "ircd"), { withoutModules: options.ircdWithoutModules, ipv6: options.ipv6, quitPrefix: options.quitPrefix, extraModules: options.extraModules, floodLimits: options.floodLimits });
    this.ircHost = options.ipv6 ? "::1" : "127.0.0.1";
    this.ircServer = options.ircServer;
    this.synapse = new Synapse(join(dir, "synapse"));
    this.bridge = new BridgeProcess(dir, join(dir, "registration.yaml"));
  }

  static async start(options: StackOptions = {}): Promise<Stack> {
    const stack = new Stack(mkdtempSync(join(tmpdir(), "irc-bridge-e2e-")), options);
    if ((options.store ?? e2eStoreEngine()) === "postgres") {
      stack.postgres = new PostgresCluster({ fsync: options.postgresFsync });
      await stack.postgres.start();
      stack.connectionString = await stack.postgres.createDatabase("bridge");
    }
    if (!options.ircServer) await stack.ircd.start();
    if (options.proxy) {
      stack.proxy = new TcpProxy(stack.ircd.port);
      await stack.proxy.start();
    }
    stack.bridgePort = await freePort();
    stack.synapse.port = await freePort();
    stack.registration = buildRegistration(stack.config(), `http://127.0.0.1:${stack.bridgePort}`);
    writeRegistration(stack.bridge.registrationFile, stack.registration);
    await stack.synapse.start([stack.bridge.registrationFile]);
    if (options.homeserverProxy) {
      stack.homeserverProxy = new TcpProxy(stack.synapse.port);
      await stack.homeserverProxy.start();
    }
    return stack;
  }

  /** The bridge config for this stack, validated by the real schema. */
  config(overrides: Record<string, unknown> = {}): BridgeConfig {
    return parseConfig({
      homeserver: { url: this.homeserverProxy ? `http://127.0.0.1:${this.homeserverProxy.port}` : this.synapse.url, domain: this.synapse.serverName, requestTimeoutMs: 15_000 },
      appservice: { bindAddress: "127.0.0.1", port: this.bridgePort || 1 },
      store: this.connectionString ? { engine: "postgres", connectionString: this.connectionString, dataDir: join(this.dir, "data") } : { dataDir: join(this.dir, "data") },
      logging: { level: process.env.BRIDGE_LOG_LEVEL ?? "info", format: "console" },
      networks: {
        [NETWORK]: {
          name: "TestNet",
          address: this.proxy ? "127.0.0.1" : this.ircHost,
          port: this.proxy?.port ?? this.ircServer?.port ?? this.ircd.port,
          tls: { enabled: false },
          botNick: "BridgeBot",
          ghostUserTemplate: `irc_${NETWORK}_$NICK`,
          aliasTemplate: `irc_${NETWORK}_$CHANNEL`,
          puppetNickTemplate: "$LOCALPART[m]",
          connectTimeoutMs: 15_000,
          sendRate: { burst: 200, linesPerSecond: 200 },
          mappings: this.mappings,
          ...this.networkOverrides,
        },
      },
      ...overrides,
    });
  }

  async startBridge(): Promise<void> {
    this.bridge.writeConfig(this.config(this.configOverrides));
    await this.bridge.start();
  }

  async matrixUser(name: string): Promise<MatrixTestClient> {
    const { userId, accessToken } = await this.synapse.registerUser(name);
    const client = new MatrixTestClient(this.synapse.url, userId, accessToken);
    client.startSync();
    this.matrixUsers.push(client);
    return client;
  }

  async ircUser(nick: string, channels: string[] = []): Promise<IrcTestClient> {
    const client = new IrcTestClient(nick, this.ircd.port);
    await client.connect();
    for (const channel of channels) await client.join(channel);
    this.ircUsers.push(client);
    return client;
  }

  ghostId(nick: string): string {
    return `@irc_${NETWORK}_${nick.toLowerCase()}:${this.synapse.serverName}`;
  }

  /** The message links the bridge has stored (either engine), read while it runs. */
  async storedMessageLinks(): Promise<{ eventId: string; networkId: string; msgid: string }[]> {
    if (this.connectionString) {
      const client = new pg.Client({ connectionString: this.connectionString });
      await client.connect();
      try {
        return (await client.query("SELECT event_id AS \"eventId\", network_id AS \"networkId\", msgid FROM message_links")).rows;
      } finally {
        await client.end();
      }
    }
    let text = "";
    try {
      text = readFileSync(join(this.dir, "data", "messages.log"), "utf8");
    } catch {
      return [];
    }
    // One JSON array per link, [roomId, eventId, networkId, msgid, at] (see src/store/LinkLog.ts); a torn last line is skipped.
    return text.split("\n").flatMap((l) => {
      try {
        const [, eventId, networkId, msgid] = JSON.parse(l) as string[];
        return [{ eventId, networkId, msgid }];
      } catch {
        return [];
      }
    });
  }

  /** Every byte the store has on disk, as text (NeDB's files; PostgreSQL's whole data directory, WAL included). */
  storeBytesOnDisk(): string {
    const read = (dir: string): string[] =>
      readdirSync(dir).flatMap((name) => {
        const path = join(dir, name);
        try {
          return statSync(path).isDirectory() ? read(path) : [readFileSync(path, "latin1")];
        } catch {
          return []; // a file the server removed meanwhile
        }
      });
    return read(this.postgres ? this.postgres.dataDir : join(this.dir, "data")).join("\n");
  }

  /** Tears everything down, even after a failure; keeps the directory when KEEP_E2E_DIR is set. */
  async stop(): Promise<void> {
    await Promise.allSettled(this.matrixUsers.map((u) => u.stopSync()));
    await Promise.allSettled(this.ircUsers.map((u) => u.quit()));
    await Promise.allSettled([this.bridge.stop(), this.synapse.stop(), this.ircd.stop(), this.proxy?.stop(), this.homeserverProxy?.stop()]);
    // After the bridge, which holds connections to it.
    await this.postgres?.stop().catch(() => undefined);
    if (!process.env.KEEP_E2E_DIR) rmSync(this.dir, { recursive: true, force: true });
  }
}
