/**
 * Ports for the test servers (Synapse, the IRCd, the bridge, proxies, PostgreSQL), which are
 * picked before the server that will listen on them starts, sometimes many seconds before.
 *
 * A port the OS hands out for `listen(0)` and that is then closed is free again: another test
 * process (the runner takes two files at a time) could be given the same one, and an outgoing
 * connection can take it as its source port, so the server started later finds it in use. So
 * ports come from below Linux's ephemeral range (32768 and up, where the OS picks source ports
 * and `listen(0)` ports), and each is claimed for this process with a file created exclusively
 * in a shared directory, removed when the process exits; a claim whose process is gone is taken
 * over.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const FIRST_PORT = 20_000;
const PORT_COUNT = 12_000;
const CLAIMS_DIR = join(tmpdir(), "irc-bridge-test-ports");

const claimed: string[] = [];
// Each process starts at its own place in the range, then walks it.
let cursor = (process.pid * 7_919) % PORT_COUNT;

/** A TCP port on 127.0.0.1 that is free and that no other test process will be given. */
export async function freePort(): Promise<number> {
  mkdirSync(CLAIMS_DIR, { recursive: true });
  for (let tried = 0; tried < PORT_COUNT; tried++) {
    const port = FIRST_PORT + (cursor++ % PORT_COUNT);
    if (claim(port) && (await canListen(port))) return port;
  }
  throw new Error(`no free port between ${FIRST_PORT} and ${FIRST_PORT + PORT_COUNT - 1}`);
}

function claim(port: number): boolean {
  const file = join(CLAIMS_DIR, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: "wx" });
      if (claimed.length === 0) process.once("exit", releaseClaims);
      claimed.push(file);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      if (ownerAlive(file)) return false;
      rmSync(file, { force: true });
    }
  }
  return false;
}

function ownerAlive(file: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(file, "utf8"));
  } catch {
    return false; // released meanwhile
  }
  if (!Number.isInteger(pid) || pid <= 0) return true; // being written: leave it to its owner
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function releaseClaims(): void {
  for (const file of claimed) rmSync(file, { force: true });
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}
