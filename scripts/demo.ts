/**
 * `npm run demo`: a throwaway Synapse, InspIRCd and the bridge on loopback with one mapped
 * room, a Matrix test user, and instructions to connect real clients. Runs until Ctrl-C.
 * It is the end-to-end test harness, started by hand.
 */
import { MatrixTestClient } from "../spec/harness/matrixClient.js";
import { Stack } from "../spec/harness/stack.js";

const CHANNEL = "#demo";
const USER = "demo";
const PASSWORD = "demo-password";

async function main(): Promise<void> {
  process.stdout.write("Starting InspIRCd, Synapse and the bridge on 127.0.0.1 ...\n");
  const stack = await Stack.start();
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write("\nStopping ...\n");
    await stack.stop();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());
  try {
    await stack.synapse.registerUser(USER, PASSWORD);
    const { accessToken } = await stack.synapse.registerUser("demo-admin", PASSWORD, true);
    const admin = new MatrixTestClient(stack.synapse.url, "@demo-admin:localhost", accessToken);
    const roomId = await admin.createRoom({ name: `IRC ${CHANNEL}`, room_alias_name: "demo", invite: [`@${USER}:localhost`] });
    stack.mappings = { [CHANNEL]: { roomIds: [roomId] } };
    await stack.startBridge();
    process.stdout.write(`
The demo is running. Everything lives in ${stack.dir} and is removed on exit.

Matrix (e.g. Element, or any client that lets you set a homeserver URL):
  homeserver  ${stack.synapse.url}
  user        ${USER}   password  ${PASSWORD}
  room        #demo:localhost  (${roomId}); you are invited, join it and talk
  portals     join #irc_testnet_#anychannel:localhost to open a room for any channel
  admin room  start a direct chat with @ircbot:localhost and send !help

IRC (any client, plain text, no TLS):
  server      127.0.0.1  port ${stack.ircd.port}
  channel     ${CHANNEL}

Bridge log: ${stack.bridge.logFile}
Press Ctrl-C to stop.
`);
  } catch (err) {
    process.stderr.write(`Demo failed to start: ${(err as Error).message}\n`);
    await stack.stop();
    process.exit(1);
  }
}

void main();
