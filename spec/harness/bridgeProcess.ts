/** The bridge as its users run it: `node dist/src/main.js -c config.yaml -f registration.yaml`. */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import yaml from "js-yaml";
import { stopProcess } from "./processes.js";
import { waitFor } from "./wait.js";

export const MAIN_JS = resolve(dirname(fileURLToPath(import.meta.url)), "../../src/main.js");

export class BridgeProcess {
  private child: ChildProcess | null = null;
  output = "";
  readonly configFile: string;
  readonly logFile: string;
  /** Extra Node.js flags for the bridge process (e.g. --expose-gc for benchmarks). */
  nodeArgs: string[] = [];

  constructor(
    private readonly dir: string,
    readonly registrationFile: string,
  ) {
    this.configFile = join(dir, "config.yaml");
    this.logFile = join(dir, "bridge.log");
  }

  writeConfig(config: unknown): void {
    writeFileSync(this.configFile, yaml.dump(config));
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the bridge and waits until it reports that it is up. */
  async start(readyTimeoutMs = 60_000): Promise<void> {
    if (this.running) throw new Error("the bridge is already running; stop it first");
    this.output = "";
    const log = createWriteStream(this.logFile, { flags: "a" });
    const child = spawn(process.execPath, [...this.nodeArgs, MAIN_JS, "-c", this.configFile, "-f", this.registrationFile], { stdio: ["ignore", "pipe", "pipe"] });
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.on("data", (chunk: Buffer) => {
        this.output += chunk.toString();
        log.write(chunk);
      });
    }
    this.child = child;
    await waitFor(
      "the bridge to start",
      () => {
        if (child.exitCode !== null) throw new Error(`bridge exited with ${child.exitCode}:\n${this.output.slice(-3000)}`);
        return this.output.includes("Bridge started");
      },
      readyTimeoutMs,
      100,
    );
  }

  /** Stops the bridge with a signal; returns its exit code. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    const code = await stopProcess(this.child, signal);
    this.child = null;
    return code;
  }
}
