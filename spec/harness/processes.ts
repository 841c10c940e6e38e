import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";

/** Starts a child process whose output goes to a log file (kept for post-mortems). */
export function startLogged(command: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const out = createWriteStream(logFile, { flags: "a" });
  const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  return child;
}

/** Sends a signal and waits (bounded) for the process to exit; SIGKILL after the bound. */
export async function stopProcess(child: ChildProcess | null, signal: NodeJS.Signals = "SIGTERM", timeoutMs = 15_000): Promise<number | null> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await exited;
  clearTimeout(timer);
  return code;
}
