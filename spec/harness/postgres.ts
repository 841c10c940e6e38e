/**
 * A throwaway PostgreSQL cluster (Debian's `postgresql`): `initdb` into a temp dir, `pg_ctl
 * start` on a free loopback port with its unix socket in that dir, trust auth; `stop()` stops
 * it and removes the dir. initdb refuses to run as root: as root, the cluster runs as the
 * `postgres` user the Debian package creates (or PG_TEST_USER).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "./ports.js";

/** The directory holding initdb, pg_ctl and postgres. */
export function postgresBinDir(): string {
  const has = (dir: string) => existsSync(join(dir, "initdb")) && existsSync(join(dir, "pg_ctl"));
  const candidates: string[] = [];
  if (process.env.PG_BINDIR) candidates.push(process.env.PG_BINDIR);
  try {
    candidates.push(execFileSync("pg_config", ["--bindir"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
  } catch {
    // pg_config comes with libpq-dev, which may be missing
  }
  const debian = "/usr/lib/postgresql";
  if (existsSync(debian)) {
    const versions = readdirSync(debian).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => join(debian, v, "bin")));
  }
  candidates.push(...(process.env.PATH ?? "").split(":").filter(Boolean));
  const found = candidates.find(has);
  if (!found) throw new Error("PostgreSQL server binaries (initdb, pg_ctl) not found; run scripts/install-test-deps.sh (apt-get install postgresql)");
  return found;
}

/** uid/gid to run the cluster as: ourselves, or an unprivileged user when we are root. */
function clusterUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const name = process.env.PG_TEST_USER ?? "postgres";
  const line = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`running as root, and there is no user ${name} to run PostgreSQL as (initdb refuses root); create one or set PG_TEST_USER`);
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

export interface PostgresOptions {
  /** fsync off is faster; never in a test of durability across power loss (default: off). */
  fsync?: boolean;
}

export class PostgresCluster {
  port = 0;
  readonly dir: string;
  private readonly bin = postgresBinDir();
  private readonly user = clusterUser();
  private started = false;

  constructor(private readonly options: PostgresOptions = {}) {
    // Its own temp dir (not under a test's 0700 dir): the cluster's user must reach it.
    this.dir = mkdtempSync(join(tmpdir(), "irc-bridge-pg-"));
    if (this.user) chownSync(this.dir, this.user.uid, this.user.gid);
  }

  private run(tool: string, args: string[]): void {
    const res = spawnSync(join(this.bin, tool), args, { encoding: "utf8", cwd: this.dir, ...(this.user ?? {}), timeout: 120_000 });
    if (res.status !== 0) throw new Error(`${tool} failed (${res.status ?? res.signal}): ${res.stderr || res.stdout}${res.error ? res.error.message : ""}`);
  }

  get dataDir(): string {
    return join(this.dir, "data");
  }

  get logFile(): string {
    return join(this.dir, "postgres.log");
  }

  /** Starts the server (on the same port again after `stopServer`). */
  async start(): Promise<void> {
    this.port ||= await freePort();
    if (!existsSync(this.dataDir)) this.run("initdb", ["-D", this.dataDir, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync"]);
    const opts = `-k ${this.dir} -p ${this.port} -c listen_addresses=127.0.0.1 -c fsync=${this.options.fsync ? "on" : "off"} -c max_connections=200`;
    this.run("pg_ctl", ["-D", this.dataDir, "-o", opts, "-l", this.logFile, "-w", "-t", "120", "start"]);
    this.started = true;
  }

  /** A libpq URL for a database of this cluster. */
  url(database = "postgres"): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/${database}`;
  }

  /** Creates a database (fresh, empty) and returns its URL. */
  async createDatabase(name: string): Promise<string> {
    const client = new pg.Client({ connectionString: this.url() });
    await client.connect();
    try {
      await client.query(`DROP DATABASE IF EXISTS "${name}"`);
      await client.query(`CREATE DATABASE "${name}"`);
    } finally {
      await client.end();
    }
    return this.url(name);
  }

  /** Stops the server (fast: clients are disconnected), keeping its data: an outage. */
  stopServer(): void {
    if (!this.started) return;
    this.started = false;
    try {
      this.run("pg_ctl", ["-D", this.dataDir, "-m", "fast", "-w", "stop"]);
    } catch {
      // already gone
    }
  }

  /** Stops the server and, unless `keep`, removes the dir. */
  async stop(keep = Boolean(process.env.KEEP_E2E_DIR)): Promise<void> {
    this.stopServer();
    if (!keep) rmSync(this.dir, { recursive: true, force: true });
  }
}
