import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { describe, test } from "node:test";
import { ConnectScheduler } from "../../src/irc/ConnectScheduler.js";
import { IrcConnection } from "../../src/irc/IrcConnection.js";
import { waitFor } from "../harness/wait.js";

/**
 * A loopback server that welcomes a client only once it has said QUIT: the welcome then
 * arrives at a connection that was quit while registering. A stand-in for the race, not a
 * real IRC server.
 */
async function lateWelcomeServer() {
  const seenUser: Socket[] = [];
  const closed: Socket[] = [];
  const server = createServer((socket) => {
    socket.on("error", () => undefined);
    socket.on("close", () => closed.push(socket));
    let buffer = "";
    socket.on("data", (chunk) => {
      buffer += chunk.toString("latin1");
      if (/^USER /m.test(buffer) && !seenUser.includes(socket)) seenUser.push(socket);
      if (/^QUIT/m.test(buffer) && !socket.destroyed) socket.end(":irc.test 001 alice :Welcome\r\n:irc.test 376 alice :End of MOTD\r\n");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { port: (server.address() as AddressInfo).port, seenUser, closed, close: () => server.close() };
}

describe("connection lifecycle", () => {
  test("a connection quit while it was registering never comes back as a zombie", { timeout: 20_000 }, async () => {
    const server = await lateWelcomeServer();
    const connection = new IrcConnection({
      networkId: "t",
      networkName: "Test",
      host: "127.0.0.1",
      port: server.port,
      tls: false,
      rejectUnauthorized: false,
      nick: "alice",
      username: "alice",
      realname: "@alice:example.org",
      connectTimeoutMs: 5_000,
      sendRate: { burst: 5, linesPerSecond: 5 },
      reconnect: true,
      scheduler: new ConnectScheduler("t", 10, 1, 1_000),
      localAddress: null,
      quiet: false,
      owner: "@alice:example.org",
    });
    let registered = 0;
    connection.on("registered", () => registered++);
    try {
      const connecting = connection.connect().then(
        () => "connected",
        (err: Error) => err.message,
      );
      await waitFor("the server to read USER", () => server.seenUser.length > 0, 5_000, 10);
      await connection.quit("bye");
      // The welcome arrives after the quit; the connection must not come alive on it.
      assert.notEqual(await connecting, "connected");
      await waitFor("the link to be closed at both ends", () => server.closed.length > 0, 5_000, 10);
      assert.equal(connection.state, "stopped");
      assert.equal(registered, 0);
    } finally {
      for (const socket of server.seenUser) socket.destroy();
      server.close();
    }
  });
});
