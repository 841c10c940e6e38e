/**
 * A hostile IRC server: malformed lines (missing parameters, 10 KB lines, invalid UTF-8, NUL,
 * bare CR, odd prefixes, unknown numerics, a line without LF growing past 2 MB) interleaved
 * with valid channel lines. The bridge (bot and a puppet, both connected to that server) must
 * stay up, relay every valid line after them in order, and escape HTML from IRC.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { HostileIrcd } from "../harness/hostileIrcd.js";
import type { MatrixTestClient } from "../harness/matrixClient.js";
import { Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";

const CHANNEL = "#chan";
const EVIL = ":evil!u@evil.host";
const SRV = ":hostile.test";
const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "utf8") : Buffer.from(p))));

/** Each case: a label and the malformed lines (sent as one write, each ended by CRLF). */
const CASES: [string, (string | Buffer)[]][] = [
  ["JOIN without parameters", [`${EVIL} JOIN`, `${EVIL} JOIN :`]],
  ["PART without parameters", [`${EVIL} PART`, `${EVIL} PART :`]],
  ["KICK without parameters", [`${EVIL} KICK`, `${EVIL} KICK ${CHANNEL}`, `${EVIL} KICK :`]],
  ["NICK without parameters", [`${EVIL} NICK`, `${EVIL} NICK :`, `:BridgeBot!u@bridge.test NICK`]],
  ["QUIT without parameters", [`${EVIL} QUIT`, `:!@ QUIT`]],
  ["MODE without parameters", [`${EVIL} MODE`, `${EVIL} MODE ${CHANNEL}`, `${EVIL} MODE ${CHANNEL} +o`, `${EVIL} MODE ${CHANNEL} +ooookl`]],
  ["TOPIC without parameters", [`${EVIL} TOPIC`, `${EVIL} TOPIC ${CHANNEL}`]],
  ["PRIVMSG and NOTICE without parameters", [`${EVIL} PRIVMSG`, `${EVIL} PRIVMSG ${CHANNEL}`, `${EVIL} NOTICE`, `${EVIL} NOTICE ${CHANNEL}`, `${EVIL} PRIVMSG :`]],
  ["INVITE, AWAY, ACCOUNT, CHGHOST, SETNAME, TAGMSG without parameters", ["INVITE", "AWAY", "ACCOUNT", "CHGHOST", "SETNAME", "TAGMSG", "PING", "PONG", "ERROR"].map((c) => `${EVIL} ${c}`)],
  ["BATCH and CAP malformed", [`${SRV} BATCH`, `${SRV} BATCH +`, `${SRV} BATCH -nope`, `${SRV} CAP`, `${SRV} CAP * ACK`, `${SRV} CAP * NEW`, `${SRV} CAP * DEL`, `@batch=nope ${EVIL} PRIVMSG ${CHANNEL} :in no batch`]],
  ["numerics without parameters", ["001", "005", "311", "315", "318", "324", "329", "332", "333", "352", "353", "366", "367", "368", "372", "375", "376", "401", "404", "433", "471", "473", "474", "475", "900", "903", "904"].map((n) => `${SRV} ${n}`)],
  ["numerics with too few parameters", [`${SRV} 353 BridgeBot`, `${SRV} 353 BridgeBot =`, `${SRV} 366 BridgeBot`, `${SRV} 332 BridgeBot`, `${SRV} 333 BridgeBot ${CHANNEL}`, `${SRV} 474 BridgeBot`, `${SRV} 433 *`]],
  ["unknown numerics", [`${SRV} 999 BridgeBot :what`, `${SRV} 000`, `${SRV} 7777777 x y z`, `${SRV} 01 :short`]],
  ["odd prefixes", [`:!@ PRIVMSG ${CHANNEL} :odd prefix`, `: PRIVMSG ${CHANNEL} :empty prefix`, `PRIVMSG ${CHANNEL} :no prefix`, `:@ JOIN ${CHANNEL}`, `:!!! PART ${CHANNEL}`, `:a!b!c@d@e JOIN ${CHANNEL}`, ":", "@", "@ :", "   ", `@;;;=\\\\== ${EVIL} PRIVMSG ${CHANNEL} :odd tags`]],
  ["10 KB lines", [`${EVIL} PRIVMSG ${CHANNEL} :${"A".repeat(10_240)}`, `${EVIL} JOIN #${"c".repeat(10_240)}`, `@t=${"x".repeat(10_240)} ${EVIL} PRIVMSG ${CHANNEL} :big tags`, `:${"n".repeat(10_240)}!u@h JOIN ${CHANNEL}`, `${SRV} 353 BridgeBot = ${CHANNEL} :${"nick ".repeat(2_048)}`]],
  ["invalid UTF-8", [bytes(`${EVIL} PRIVMSG ${CHANNEL} :bad `, [0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x82], " utf8"), bytes(`${EVIL} JOIN #`, [0xff, 0xfe]), bytes(":ev", [0xc0, 0xaf], "il!u@h JOIN ", CHANNEL), bytes([0xff, 0xff, 0xff])]],
  ["NUL bytes", [`${EVIL} PRIVMSG ${CHANNEL} :nul\u0000byte`, `:ev\u0000il!u@h JOIN ${CHANNEL}`, "\u0000\u0000\u0000", `${EVIL} JOIN \u0000`]],
  ["ISUPPORT without values", [`${SRV} 005 BridgeBot CHANTYPES PREFIX CHANMODES CASEMAPPING NICKLEN :are supported`, `${SRV} 005 BridgeBot CHANTYPES= PREFIX= CASEMAPPING=nonsense :are supported`]],
  ["bare CR", [`${EVIL} PRIVMSG ${CHANNEL} :cr\rin the middle`, "\r\r\r", `${EVIL} JOIN\r${CHANNEL}`, `${EVIL} PART ${CHANNEL}\r\r`]],
];

describe("a hostile IRC server", { timeout: 600_000 }, () => {
  let stack: Stack;
  let ircd: HostileIrcd;
  let alice: MatrixTestClient;
  let roomId: string;
  const crashed: string[] = [];
  const stalled: string[] = [];
  const markers: string[] = [];

  /** Sends the lines and a valid line after them in one write, then sees whether the bridge survived and relayed the valid line. */
  async function survive(label: string, payload: Buffer): Promise<void> {
    const text = `marker ${markers.length} after ${label}`;
    markers.push(text);
    const valid = Buffer.from(`:carol!c@carol.host PRIVMSG ${CHANNEL} :${text}\r\n`);
    assert.ok(ircd.sendRaw(CHANNEL, Buffer.concat([payload, valid])) > 0, "someone is in the channel");
    const outcome = await waitFor(
      `the line after ${label} (or the bridge to die)`,
      () => (!stack.bridge.running ? "crashed" : alice.messages(roomId).some((e) => e.content.body === text) ? "relayed" : undefined),
      30_000,
      50,
    ).catch(() => "stalled");
    if (outcome === "relayed") return;
    (outcome === "crashed" ? crashed : stalled).push(label);
    // Start afresh so each case is judged on its own.
    if (stack.bridge.running) await stack.bridge.stop();
    await stack.bridge.start();
    await ircd.waitForJoin("BridgeBot", CHANNEL);
  }

  before(async () => {
    ircd = new HostileIrcd(["carol", "mallory", "evil"]);
    await ircd.start();
    stack = await Stack.start({ ircServer: ircd });
    alice = await stack.matrixUser("alice");
    roomId = await alice.createRoom({ name: "Hostile" });
    stack.mappings = { [CHANNEL]: { roomIds: [roomId] } };
    await stack.startBridge();
    await ircd.waitForJoin("BridgeBot", CHANNEL);
    // Alice's puppet connects too (quiet transport), and her nick can be mentioned.
    await waitFor("the bot in the room", async () => (await alice.request("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/joined_members`)).joined);
    await alice.sendText(roomId, "hello hostile world");
    const puppet = await ircd.waitForJoin("alice[m]", CHANNEL);
    await waitFor("alice's message on IRC", () => puppet.received.some((l) => l.endsWith(":hello hostile world")));
  });

  after(async () => {
    await stack?.stop();
    await ircd?.stop();
  });

  test("no malformed line crashes the bridge or stops the lines after it", async () => {
    // One line at a time, so each crash is known by its line.
    for (const [group, lines] of CASES) {
      for (const line of lines) {
        const raw = Buffer.isBuffer(line) ? line : Buffer.from(line, "utf8");
        await survive(`${group}: ${JSON.stringify(raw.toString("latin1").slice(0, 48))}`, Buffer.concat([raw, Buffer.from("\r\n")]));
      }
    }
    // A line without LF growing past 2 MB, in chunks as a slow server would send it, then its LF.
    const chunk = Buffer.from(`${EVIL} PRIVMSG ${CHANNEL} :${"X".repeat(64 * 1024)}`);
    for (let sent = 0; sent < 2.2 * 1024 * 1024; sent += chunk.length) {
      ircd.sendRaw(CHANNEL, chunk);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await survive("a 2 MB line without LF", Buffer.from("\n"));

    assert.deepEqual({ crashed, stalled }, { crashed: [], stalled: [] }, `of ${markers.length} malformed lines, ${crashed.length} crashed the bridge and ${stalled.length} stopped later lines`);
    assert.ok(stack.bridge.running, "the bridge process is alive");
    const relayed = alice.messages(roomId, (e) => String(e.content.body).startsWith("marker ")).map((e) => e.content.body);
    assert.deepEqual(relayed, markers, "every valid line after the malformed ones arrives, in order");
    assert.match(stack.bridge.output, /Dropped a line from IRC .*"reason":"too_long"/, "the over-long line is logged");
    const metricsText = await (await fetch(`http://127.0.0.1:${stack.bridgePort}/metrics`)).text();
    const dropped = (reason: string) => Number(metricsText.match(new RegExp(`bridge_irc_lines_dropped_total\\{[^}]*reason="${reason}"[^}]*\\} (\\d+)`))?.[1] ?? 0);
    assert.ok(dropped("too_long") >= 1 && dropped("malformed") >= 20, `dropped lines are counted: ${metricsText.match(/bridge_irc_lines_dropped_total\{.*/g)}`);
  });

  test("HTML from IRC is escaped in formatted_body; body is the plain text", async () => {
    const plain = `<b>x</b><script>alert(1)</script> & "quotes"`;
    const mention = `alice[m]: <b>bold</b> <i>it</i><script>alert(2)</script> <a href="javascript:x">link</a>`;
    ircd.sendLine(CHANNEL, `:mallory!m@mallory.host PRIVMSG ${CHANNEL} :${plain}`);
    ircd.sendLine(CHANNEL, `:mallory!m@mallory.host PRIVMSG ${CHANNEL} :${mention}`);
    const first = await alice.waitForMessage(roomId, (e) => e.content.body === plain);
    const second = await alice.waitForMessage(roomId, (e) => e.content.body === mention);
    assert.equal(second.content.format, "org.matrix.custom.html", "the mention makes an HTML body");
    for (const event of [first, second]) {
      const html = event.content.formatted_body;
      if (html === undefined) continue;
      assert.equal(typeof html, "string");
      assert.doesNotMatch(html as string, /<(b|i|script|a href="javascript)/i, `raw markup in formatted_body: ${html}`);
      assert.match(html as string, /&lt;script&gt;/);
    }
    assert.match(second.content.formatted_body as string, /<a href="https:\/\/matrix\.to\/#\/%40alice%3A/, "the mention is a pill");
    assert.ok(stack.bridge.running);
  });
});
