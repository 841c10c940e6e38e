/**
 * How IRC sees each Matrix user: their own ident, answered by the bridge's ident server,
 * and (where the host routes an IPv6 prefix to the bridge) their own stable source address.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { after, before, describe, test } from "node:test";
import type { MatrixTestClient } from "../harness/matrixClient.js";
import { freePort } from "../harness/ports.js";
import { Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";

function identQuery(port: number, query: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: "127.0.0.1", port }, () => socket.write(`${query}\r\n`));
    let answer = "";
    socket.on("data", (d) => (answer += d.toString()));
    socket.on("end", () => resolve(answer.trim()));
    socket.on("error", reject);
  });
}

describe("ident server", { timeout: 120_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let roomId: string;
  let identPort: number;

  before(async () => {
    stack = await Stack.start({ proxy: true });
    identPort = await freePort();
    stack.configOverrides = { ident: { enabled: true, bindAddress: "127.0.0.1", port: identPort } };
    alice = await stack.matrixUser("alice");
    roomId = await alice.createRoom({ name: "Ident" });
    stack.mappings = { "#ident": { roomIds: [roomId] } };
    await stack.startBridge();
  });

  after(async () => {
    await stack?.stop();
  });

  test("answers for the bot's and each puppet's connection with their own username", async () => {
    const bob = await stack.ircUser("bob", ["#ident"]);
    await alice.sendText(roomId, "hi");
    await bob.waitForLine((l) => l.text === "hi");
    const proxy = stack.proxy!;
    // The proxy sees the bridge's end of each connection: its port is what an IRC server asks about.
    const [bot, puppet] = proxy.connections.map((c) => c.client.remotePort!);
    assert.equal(await identQuery(identPort, `${bot} , ${proxy.port}`), `${bot} , ${proxy.port} : USERID : UNIX : matrixbot`);
    assert.equal(await identQuery(identPort, `${puppet}, ${proxy.port}`), `${puppet} , ${proxy.port} : USERID : UNIX : alice`);
    assert.equal(await identQuery(identPort, `1 , ${proxy.port}`), `1 , ${proxy.port} : ERROR : NO-USER`);
  });
});

const PREFIX = "2001:db8:77::/64";

/** Routes PREFIX to lo so the bridge may bind any address in it; false where not permitted. */
function routePrefix(): (() => void) | false {
  const sysctl = "/proc/sys/net/ipv6/ip_nonlocal_bind";
  try {
    const before = readFileSync(sysctl, "utf8").trim();
    execFileSync("ip", ["-6", "route", "replace", "local", PREFIX, "dev", "lo"], { stdio: "ignore" });
    writeFileSync(sysctl, "1");
    return () => {
      writeFileSync(sysctl, before);
      // Another run on the machine may have removed it already: the route is gone either way.
      try {
        execFileSync("ip", ["-6", "route", "del", "local", PREFIX, "dev", "lo"], { stdio: "ignore" });
      } catch {
        /* already gone */
      }
    };
  } catch {
    return false;
  }
}

describe("per-user IPv6 source addresses", { timeout: 120_000 }, () => {
  let stack: Stack;
  let users: MatrixTestClient[];
  let roomId: string;
  let unroute: (() => void) | false = false;

  before(async () => {
    unroute = routePrefix();
    if (!unroute) return;
    stack = await Stack.start({ ipv6: true });
    stack.networkOverrides = { ipv6Prefix: PREFIX };
    users = await Promise.all(["v6a", "v6b"].map((n) => stack.matrixUser(n)));
    roomId = await users[0].createRoom({ name: "IPv6" });
    stack.mappings = { "#v6": { roomIds: [roomId] } };
    await stack.startBridge();
  });

  after(async () => {
    await stack?.stop();
    if (unroute) unroute();
  });

  test("each user connects from a stable address of their own in the prefix", async (t) => {
    if (!unroute) return t.skip("routing an IPv6 prefix to lo needs root (ip route, ip_nonlocal_bind)");
    const bob = await stack.ircUser("bob", ["#v6"]);
    await users[0].sendText(roomId, "from a");
    await users[1].joinRoom(roomId);
    await users[1].sendText(roomId, "from b");
    await bob.waitForLine((l) => l.text === "from b");
    const hostOf = (nick: string) =>
      waitFor(`${nick}'s JOIN`, () => bob.raw.map((l) => new RegExp(`:${nick.replace(/[[\]]/g, "\\$&")}!\\S+@(\\S+) JOIN`).exec(l)?.[1]).find(Boolean));
    const [a, b] = [await hostOf("v6a[m]"), await hostOf("v6b[m]")];
    assert.match(a, /^2001:db8:77:/);
    assert.match(b, /^2001:db8:77:/);
    assert.notEqual(a, b);

    // After a restart the same user comes back from the same address.
    await stack.bridge.stop();
    const joinsBefore = bob.raw.length;
    await stack.startBridge();
    await users[0].sendText(roomId, "again from a");
    await bob.waitForLine((l) => l.text === "again from a");
    const rejoin = bob.raw.slice(joinsBefore).find((l) => / JOIN /.test(l) && l.includes("v6a[m]!"));
    assert.ok(rejoin?.includes(`@${a} JOIN`), `v6a should rejoin from ${a}: ${rejoin}`);
  });
});
