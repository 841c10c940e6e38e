/**
 * A restart never costs a user their identity or their messages, at the bridge's default
 * sendRate (so messages really wait for flood control): after a SIGKILL with messages still
 * in the journal, the user's own nick, stored password and channels are intact and every
 * message arrives, in order, from that nick; a clean stop hands the lines still waiting for
 * flood control back to the journal instead of failing them.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient, TimelineEvent } from "../harness/matrixClient.js";
import { Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";

const DEFAULT_SEND_RATE = { burst: 5, linesPerSecond: 2 };
const BURST = 30;

/** Lines `prefix 0..n-1` each arrived at least once, first copies in order, all from `nick`. */
function assertAllInOrder(seen: { nick: string; text: string }[], prefix: string, n: number, nick: string): void {
  const texts = seen.map((l) => l.text);
  const firstSeen = Array.from({ length: n }, (_, i) => texts.indexOf(`${prefix} ${i}`));
  assert.deepEqual(firstSeen.filter((i) => i < 0), [], `every line arrives; saw ${JSON.stringify(texts)}`);
  assert.deepEqual([...firstSeen].sort((a, b) => a - b), firstSeen, "lines arrive in order");
  assert.deepEqual([...new Set(seen.map((l) => l.nick))], [nick], "all from the user's own nick");
}

describe("restarts keep users' identities and messages", { timeout: 420_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let roomId: string;
  let adminRoom: string;
  let watcher: IrcTestClient;
  let services: IrcTestClient;
  const body = (e: TimelineEvent) => String(e.content.body);
  const from = (prefix: string) => watcher.lines.filter((l) => l.target === "#restart" && l.text.startsWith(`${prefix} `));

  const command = async (text: string): Promise<string> => {
    const notices = () => alice.messages(adminRoom, (e) => e.sender !== alice.userId && e.content.msgtype === "m.notice");
    const before = notices().length;
    await alice.sendText(adminRoom, text);
    return body(await waitFor(`the answer to ${text}`, () => notices()[before], 30_000));
  };

  before(async () => {
    stack = await Stack.start();
    const keyFile = join(stack.dir, "passkey.bin");
    writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
    stack.configOverrides = { credentials: { keyFile } };
    stack.networkOverrides = { sendRate: DEFAULT_SEND_RATE };
    alice = await stack.matrixUser("alice");
    roomId = await alice.createRoom({ name: "Restart", preset: "public_chat" });
    stack.mappings = { "#restart": { roomIds: [roomId] } };
    watcher = await stack.ircUser("watcher", ["#restart"]);
    services = await stack.ircUser("NickServ");
    await stack.startBridge();
    adminRoom = await alice.createRoom({ preset: "trusted_private_chat", is_direct: true, invite: [`@ircbot:${stack.synapse.serverName}`] });
    await alice.waitForMessage(adminRoom, (e) => /This is your admin room/.test(body(e)));
    assert.match(await command("!nick AliceCustom"), /now AliceCustom/);
    assert.match(await command("!username alice"), /as alice/);
    assert.match(await command("!storepass s3cret pass"), /stored/);
    await alice.sendText(roomId, "hello");
    await watcher.waitForLine((l) => l.text === "hello" && l.nick === "AliceCustom", "alice's first line as AliceCustom");
  });

  after(async () => {
    await stack?.stop();
  });

  test("after a SIGKILL with messages in the journal, the nick, password and channels are intact and every message arrives once from that nick", async () => {
    for (let i = 0; i < BURST; i++) await alice.sendText(roomId, `killed ${i}`);
    await waitFor("the burst to start on IRC", () => from("killed").length >= 3, 60_000, 100);
    await stack.bridge.stop("SIGKILL");
    assert.ok(from("killed").length < BURST, "the crash came mid-burst");
    const identifiesBefore = services.lines.filter((l) => l.target === "NickServ").length;
    await stack.startBridge();
    await waitFor("the whole burst after the restart", () => new Set(from("killed").map((l) => l.text)).size >= BURST, 120_000, 250);
    assertAllInOrder(from("killed"), "killed", BURST, "AliceCustom");
    assert.ok(from("killed").length <= BURST + 1, `at most the line in flight at the kill repeats; saw ${from("killed").length}`);
    const identify = await waitFor("the stored password used after the restart", () => services.lines.filter((l) => l.target === "NickServ")[identifiesBefore], 30_000);
    assert.equal(identify.nick, "AliceCustom");
    assert.equal(identify.text, "IDENTIFY alice s3cret pass");
  });

  test("a clean stop hands lines waiting for flood control back to the journal; they go out after the restart", async () => {
    for (let i = 0; i < BURST; i++) await alice.sendText(roomId, `stopped ${i}`);
    await waitFor("the burst to start on IRC", () => from("stopped").length >= 3, 60_000, 100);
    await stack.bridge.stop("SIGTERM");
    assert.ok(from("stopped").length < BURST, "the stop came mid-burst");
    await stack.startBridge();
    await waitFor("the whole burst after the restart", () => new Set(from("stopped").map((l) => l.text)).size >= BURST, 120_000, 250);
    assertAllInOrder(from("stopped"), "stopped", BURST, "AliceCustom");
    const told = alice.messages(roomId, (e) => e.sender !== alice.userId && /could not be sent/.test(body(e)));
    assert.deepEqual(told, [], "nobody was told a message failed");
  });
});
