/**
 * A throwaway Synapse on loopback, from the cached virtual environment that `.ci/run`
 * (or `scripts/install-test-deps.sh`) creates. See ../shared/TESTING.md.
 */
import { execFileSync, type ChildProcess } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.js";
import { startLogged, stopProcess } from "./processes.js";
import { waitFor } from "./wait.js";

export function synapsePython(): string {
  if (process.env.SYNAPSE_PYTHON) return process.env.SYNAPSE_PYTHON;
  const cache = process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache");
  return join(cache, "matrix-irc-bridge", "synapse-venv", "bin", "python");
}


export class Synapse {
  readonly serverName = "localhost";
  private child: ChildProcess | null = null;
  private readonly secret = randomBytes(16).toString("hex");
  port = 0;

  constructor(private readonly dir: string) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private writeConfig(appserviceFiles: string[]): string {
    // Every rc_* limit raised far above what a test sends, or tests get throttled.
    const simple = { per_second: 10000, burst_count: 100000 };
    const config = {
      server_name: this.serverName,
      report_stats: false,
      pid_file: join(this.dir, "homeserver.pid"),
      signing_key_path: join(this.dir, "signing.key"),
      media_store_path: join(this.dir, "media"),
      database: { name: "sqlite3", args: { database: join(this.dir, "homeserver.db") } },
      listeners: [{ port: this.port, bind_addresses: ["127.0.0.1"], type: "http", tls: false, x_forwarded: false, resources: [{ names: ["client", "openid"], compress: false }] }],
      trusted_key_servers: [],
      suppress_key_server_warning: true,
      federation_domain_whitelist: [],
      registration_shared_secret: this.secret,
      macaroon_secret_key: randomBytes(16).toString("hex"),
      form_secret: randomBytes(16).toString("hex"),
      bcrypt_rounds: 4,
      enable_registration: false,
      app_service_config_files: appserviceFiles,
      presence: { enabled: false },
      // Synapse lets no one publish rooms in the directory unless told (portals.publish, +s/-s).
      room_list_publication_rules: [{ action: "allow" }],
      log_config: join(this.dir, "log.yaml"),
      rc_message: simple,
      rc_registration: simple,
      rc_login: { address: simple, account: simple, failed_attempts: simple },
      rc_joins: { local: simple, remote: simple },
      rc_joins_per_room: simple,
      rc_invites: { per_room: simple, per_user: simple, per_issuer: simple },
      rc_room_creation: simple,
      rc_presence: { per_user: simple },
      rc_admin_redaction: simple,
    };
    const file = join(this.dir, "homeserver.yaml");
    writeFileSync(file, JSON.stringify(config, null, 2)); // JSON is valid YAML
    writeFileSync(
      join(this.dir, "log.yaml"),
      JSON.stringify({
        version: 1,
        formatters: { precise: { format: "%(asctime)s - %(name)s - %(levelname)s - %(message)s" } },
        handlers: { file: { class: "logging.FileHandler", formatter: "precise", filename: join(this.dir, "homeserver.log") } },
        root: { level: "WARNING", handlers: ["file"] },
        disable_existing_loggers: false,
      }),
    );
    return file;
  }

  async start(appserviceFiles: string[]): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const python = synapsePython();
    if (!existsSync(python)) throw new Error(`Synapse is not installed at ${python}; run scripts/install-test-deps.sh`);
    this.port ||= await freePort();
    const configFile = this.writeConfig(appserviceFiles);
    if (!existsSync(join(this.dir, "signing.key"))) {
      execFileSync(python, ["-m", "synapse.app.homeserver", "-c", configFile, "--generate-keys"], { stdio: "ignore" });
    }
    this.child = startLogged(python, ["-m", "synapse.app.homeserver", "-c", configFile], join(this.dir, "stdout.log"));
    const child = this.child;
    await waitFor(
      "Synapse to answer /versions",
      async () => {
        if (child.exitCode !== null) throw new Error(`Synapse exited with ${child.exitCode}; see ${this.dir}/stdout.log`);
        const res = await fetch(`${this.url}/_matrix/client/versions`);
        return res.ok;
      },
      90_000,
      200,
    );
  }

  async stop(): Promise<void> {
    await stopProcess(this.child);
    this.child = null;
  }

  /** Registers a user with the shared-secret admin API and returns an access token. */
  async registerUser(username: string, password = "password", admin = false): Promise<{ userId: string; accessToken: string }> {
    const endpoint = `${this.url}/_synapse/admin/v1/register`;
    const { nonce } = (await (await fetch(endpoint)).json()) as { nonce: string };
    const mac = createHmac("sha1", this.secret)
      .update([nonce, username, password, admin ? "admin" : "notadmin"].join("\0"))
      .digest("hex");
    const res = await fetch(endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ nonce, username, password, admin, mac }),
    });
    const body = (await res.json()) as { user_id: string; access_token: string; error?: string };
    if (!res.ok) throw new Error(`register ${username}: ${res.status} ${body.error}`);
    return { userId: body.user_id, accessToken: body.access_token };
  }
}
