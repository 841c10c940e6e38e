/**
 * Command line: `-r -u URL -c config.yaml -f registration.yaml` writes a registration;
 * `-c config.yaml -f registration.yaml` runs the bridge;
 * `migrate-store --from <dataDir> --to <connectionString>` copies an NeDB store into PostgreSQL.
 */
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "./config/load.js";
import { SecretBox } from "./security/SecretBox.js";
import { BridgeApp } from "./bridge/BridgeApp.js";
import { closeLogging, configureLogging, getLogger } from "./logging.js";
import { migrateStore, MigrateStoreError } from "./store/migrateStore.js";
import { SchemaTooNewError } from "./store/pg/migrations.js";
import { buildRegistration, holdsRealRegistration, readRegistration, RegistrationError, registrationMismatches, writeRegistration } from "./registration.js";

const HELP = `matrix-irc-bridge: bridges IRC networks into Matrix (an application service).

Usage:
  matrix-irc-bridge -r -u <url> [-c config.yaml] [-f registration.yaml]
      Write a registration file for Synapse: random as_token/hs_token, the bot's
      sender_localpart, and exclusive namespaces for every network's ghosts and
      portal aliases. <url> is where Synapse reaches the bridge, e.g.
      http://127.0.0.1:9995. Add the file to app_service_config_files in
      homeserver.yaml and restart Synapse.

  matrix-irc-bridge [-c config.yaml] [-f registration.yaml]
      Run the bridge. Stops cleanly on SIGINT/SIGTERM (QUIT on IRC, store closed).

  matrix-irc-bridge migrate-store --from <dataDir> --to <connectionString>
      Copy an NeDB store (the directory store.dataDir names) into a PostgreSQL
      database, e.g. --to postgresql://bridge:secret@127.0.0.1:5432/bridge. Stop
      the bridge first. The schema is created if missing; every row is upserted,
      so running it again is harmless and an interrupted copy is finished by
      running it again. Prints how many rows of each kind were copied. Then set
      store.engine: postgres and store.connectionString in the config.

Options:
  -c, --config <file>         bridge config (default: config.yaml; see config.sample.yaml)
  -f, --file <file>           registration file (default: registration.yaml)
  -r, --generate-registration write the registration instead of running
  -u, --url <url>             with -r: the URL Synapse uses to reach the bridge
      --force                 with -r: overwrite an existing registration file
  -h, --help                  show this help

Exit codes: 0 clean stop, 1 runtime failure, 2 bad usage, 78 invalid config or registration.`;

const EXIT_USAGE = 2;
const EXIT_CONFIG = 78;

function fail(message: string, code: number): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

function parseCli() {
  try {
    return parseArgs({
      options: {
        config: { type: "string", short: "c", default: "config.yaml" },
        file: { type: "string", short: "f", default: "registration.yaml" },
        "generate-registration": { type: "boolean", short: "r", default: false },
        url: { type: "string", short: "u" },
        force: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    }).values;
  } catch (err) {
    return fail(`${(err as Error).message}\n\n${HELP}`, EXIT_USAGE);
  }
}

async function runMigrateStore(argv: string[]): Promise<void> {
  let values: { from?: string; to?: string; help?: boolean };
  try {
    values = parseArgs({ args: argv, options: { from: { type: "string" }, to: { type: "string" }, help: { type: "boolean", short: "h" } }, strict: true }).values;
  } catch (err) {
    return fail(`${(err as Error).message}\n\n${HELP}`, EXIT_USAGE);
  }
  if (values.help) return void process.stdout.write(`${HELP}\n`);
  if (!values.from || !values.to) return fail(`migrate-store needs --from <dataDir> and --to <connectionString>\n\n${HELP}`, EXIT_USAGE);
  if (!/^postgres(ql)?:\/\/\S+$/.test(values.to)) return fail("--to must be a PostgreSQL URL such as postgresql://user:password@host:5432/database", EXIT_USAGE);
  process.stdout.write(`Copying the NeDB store in ${values.from} into PostgreSQL\n`);
  await migrateStore(values.from, values.to, (line) => process.stdout.write(`  ${line}\n`));
  process.stdout.write("Done. Set store.engine: postgres and store.connectionString in the config, then start the bridge.\n");
}

async function run(): Promise<void> {
  if (process.argv[2] === "migrate-store") return runMigrateStore(process.argv.slice(3));
  const args = parseCli();
  if (args.help) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const config = loadConfig(args.config);

  if (args["generate-registration"]) {
    if (!args.url || !/^https?:\/\/\S+$/.test(args.url)) fail("-r needs -u <url>, e.g. -u http://127.0.0.1:9995", EXIT_USAGE);
    if (holdsRealRegistration(args.file) && !args.force) {
      fail(`${args.file} already holds a registration; pass --force to replace it (then restart Synapse)`, EXIT_USAGE);
    }
    writeRegistration(args.file, buildRegistration(config, args.url));
    process.stdout.write(`Wrote ${args.file}. Add it to app_service_config_files in homeserver.yaml and restart Synapse.\n`);
    return;
  }

  const registration = readRegistration(args.file);
  const mismatches = registrationMismatches(config, registration);
  if (mismatches.length > 0) {
    throw new RegistrationError(
      `Registration ${args.file} does not match config ${args.config}:\n${mismatches.map((m) => `  - ${m}`).join("\n")}\n` +
        "Regenerate it with -r (then restart Synapse) or fix the config.",
    );
  }

  const secrets = config.credentials.keyFile ? SecretBox.fromKeyFile(config.credentials.keyFile, args.config) : null;
  configureLogging(config.logging);
  const log = getLogger("main");
  const app = new BridgeApp(config, registration, secrets);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app
      .stop(signal)
      .then(() => closeLogging())
      .then(() => process.exit(0))
      .catch((err: Error) => {
        log.error("Unclean shutdown", { error: err.message });
        process.exit(1);
      });
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("unhandledRejection", (err) => log.error("Unhandled rejection", { error: String((err as Error)?.stack ?? err) }));
  await app.start();
}

run().catch((err: Error) => {
  if (err instanceof ConfigError || err instanceof RegistrationError) fail(err.message, EXIT_CONFIG);
  if (err instanceof SchemaTooNewError || err instanceof MigrateStoreError) fail(err.message, 1);
  fail(`Fatal: ${err.stack ?? err.message}`, 1);
});
