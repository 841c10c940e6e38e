/**
 * Ports for the test servers (Synapse, the IRCd, the bridge, proxies, PostgreSQL), which are
 * picked before the server that will listen on them starts, sometimes many seconds before.
 *
 * A port the OS hands out for `listen(0)` and that is then closed is free again: another test
 * process (the runner takes two files at a time) could be given the same one, and an outgoing
 * connection can take it as its source port, so the server started later finds it in use. So
 * ports come from below Linux's ephemeral range (32768 and up, where the OS picks source ports
 * and `listen(0)` ports), and each is claimed for this process with a file created exclusively
 * in a directory of this user's, removed when the process exits; a claim whose process is gone
 * (killed before its exit handler ran) is taken over.
 */
import { mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const FIRST_PORT = 20_000;
const PORT_COUNT = 12_000;
// Per user: another user's directory (or claim files) would be unwritable here.
const CLAIMS_DIR = join(tmpdir(), `irc-bridge-test-ports-${process.getuid?.() ?? "user"}`);

const claimed: string[] = [];
// Each process starts at its own place in the range (a prime spreads the pids), then walks it.
let cursor = (process.pid * 7_919) % PORT_COUNT;

/**
 * A TCP port, free on 127.0.0.1 (and ::1), that no other test process of this user is handed
 * while this one runs. A claimed port that turns out to be in use stays claimed until exit, so
 * it is not tried again.
 */
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
  if (create(file)) return true;
  // Taken: take it over only if its owner is gone. Read-check-remove is not atomic, so it is
  // done under a lock (an exclusive mkdir); otherwise two processes that both read the dead
  // owner could each remove the other's new claim and both be handed the port.
  const lock = `${file}.lock`;
  try {
    mkdirSync(lock);
  } catch {
    return false; // someone else is taking it over (or died doing so): skip this port
  }
  try {
    const owner = ownerOf(file);
    if (owner === "alive") return false;
    // Only a dead owner's file is removed: a file that was gone may be someone's new claim by now.
    if (owner === "dead") rmSync(file, { force: true });
    return create(file);
  } finally {
    rmdirSync(lock);
  }
}

/** Creates the claim file exclusively; false if it exists. */
function create(file: string): boolean {
  try {
    writeFileSync(file, String(process.pid), { flag: "wx" });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
  if (claimed.length === 0) process.once("exit", releaseClaims);
  claimed.push(file);
  return true;
}

function ownerOf(file: string): "alive" | "dead" | "gone" {
  let pid: number;
  try {
    pid = Number(readFileSync(file, "utf8"));
  } catch {
    return "gone"; // released meanwhile
  }
  if (!Number.isInteger(pid) || pid <= 0) return "alive"; // being written: leave it to its owner
  try {
    process.kill(pid, 0);
    return "alive";
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM" ? "alive" : "dead";
  }
}

function releaseClaims(): void {
  for (const file of claimed) rmSync(file, { force: true });
}

/** Free on 127.0.0.1, and on ::1 where there is one (the IRCd binds both with `ipv6`). */
async function canListen(port: number): Promise<boolean> {
  return (await canListenOn(port, "127.0.0.1")) && (await canListenOn(port, "::1", ["EADDRNOTAVAIL", "EAFNOSUPPORT"]));
}

function canListenOn(port: number, host: string, fineIf: string[] = []): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", (err: NodeJS.ErrnoException) => resolve(fineIf.includes(err.code ?? "")));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}
