/**
 * IRC → Matrix stamps each line with its IRC server-time (the appservice `ts` parameter), keeps
 * one transaction ID across retries, and does not send a recovered line its room already has.
 * A fake intent whose client points at a local HTTP server, which records the client-server
 * requests the bridge makes (sendAt sends a ghost's events with its own HTTP call).
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { IrcToMatrix } from "../../src/bridge/IrcToMatrix.js";
import { KeyedQueue } from "../../src/bridge/KeyedQueue.js";
import type { RoomLinks } from "../../src/bridge/RoomLinks.js";
import type { BridgeConfig } from "../../src/config/schema.js";
import type { IrcMessage } from "../../src/irc/IrcConnection.js";
import type { NetworkPool } from "../../src/irc/NetworkPool.js";
import type { Ghosts } from "../../src/matrix/Ghosts.js";
import type { MessageLink } from "../../src/store/DataStore.js";
import { waitFor } from "../harness/wait.js";

const ROOM = "!room:example.org";
// A minute and a half ago (a time in the future would be capped at now).
const SAID_AT = Date.now() - 90_000;

type Recorded = { path: string; qs: Record<string, string> | null; body: Record<string, unknown>; auth?: string };
/** What the server answers next (a status and body), or null for the usual 200 with an event ID. */
let answer: ((r: Recorded) => [number, Record<string, unknown>] | null) | null = null;
let recorded: Recorded[] = [];
let server: Server;
let homeserverUrl = "";

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://x");
      const qs = url.search ? Object.fromEntries(url.searchParams) : null;
      const r: Recorded = { path: url.pathname.replace(/%21/g, "!"), qs, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>, auth: req.headers.authorization };
      recorded.push(r);
      const [status, body] = answer?.(r) ?? [200, { event_id: `$ev${recorded.length}` }];
      const text = JSON.stringify(body); // with a length, as Synapse answers
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  homeserverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

function setup(options: { failFirst?: boolean; links?: MessageLink[]; membership?: string | null } = {}) {
  recorded = [];
  const requests = recorded;
  const plainSends: Record<string, unknown>[] = [];
  const joins: string[] = [];
  let fail = options.failFirst ?? false;
  answer = () => {
    if (!fail) return null;
    fail = false;
    return [504, { error: "gateway timeout" }];
  };
  const intent = {
    userId: "@irc_net_bob:example.org",
    opts: { backingStore: { getMembership: () => options.membership ?? null } },
    async join(roomId: string) {
      joins.push(roomId);
      return ROOM;
    },
    async sendEvent(_roomId: string, _type: string, content: Record<string, unknown>) {
      plainSends.push(content);
      return { event_id: `$plain${plainSends.length}` };
    },
    matrixClient: { homeserverUrl, accessToken: "as-token", impersonatedUserId: "@irc_net_bob:example.org" },
  };
  const ghosts = { userIdFor: () => intent.userId, intentFor: async () => intent, preparedIntent: () => undefined } as unknown as Ghosts;
  const links = { roomsOf: () => [ROOM] } as unknown as RoomLinks;
  const config = { networks: { net: {} } } as unknown as BridgeConfig;
  const reached: string[] = [];
  const pool = Object.assign(new EventEmitter(), {
    networkId: "net",
    bot: { casefold: (s: string) => s.toLowerCase(), caseMapping: "rfc1459" },
    isOwnNick: () => false,
    userIdOfNick: () => null,
    reachedMatrix: (msg: IrcMessage) => void reached.push(msg.text),
  });
  const linked: MessageLink[] = [];
  const relay = new IrcToMatrix(config, links, ghosts, new KeyedQueue(), {
    onLinked: (l) => void linked.push(...l),
    onGhostInRoom: () => undefined,
    onQueued: () => () => undefined,
    wantsMentions: () => false,
    linkOfMsgid: async (_networkId, msgid) => (options.links ?? []).find((l) => l.msgid === msgid) ?? null,
  });
  relay.attach(pool as unknown as NetworkPool);
  const say = (text: string, extra: Partial<IrcMessage> = {}) =>
    pool.emit("channelLine", { kind: "privmsg", nick: "bob", ident: "b", hostname: "h", target: "#c", text, tags: {}, receivedAt: Date.now(), ...extra } satisfies IrcMessage);
  return { requests, plainSends, reached, linked, say, joins };
}

describe("IRC server-time on Matrix events", () => {
  test("a line with a server time is sent with it as the appservice ts", async () => {
    const { requests, reached, say } = setup();
    say("hello", { time: SAID_AT, tags: { msgid: "m1" } });
    await waitFor("the send", () => reached.length === 1, 5_000);
    assert.equal(requests.length, 1);
    assert.deepEqual(requests[0].qs, { user_id: "@irc_net_bob:example.org", ts: String(SAID_AT) });
    assert.equal(requests[0].auth, "Bearer as-token");
    assert.match(requests[0].path, /^\/_matrix\/client\/v3\/rooms\/!room%3Aexample\.org\/send\/m\.room\.message\/[^/]+$/);
    assert.equal(requests[0].body.body, "hello");
  });

  test("a retry after a failed try uses the same transaction ID (a lost answer is not a second event)", async () => {
    const { requests, reached, say } = setup({ failFirst: true });
    say("retried", { time: SAID_AT });
    await waitFor("the send after a retry", () => reached.length === 1, 10_000);
    assert.equal(requests.length, 2);
    assert.equal(requests[0].path, requests[1].path);
  });

  test("a line without a server time is sent without ts", async () => {
    const { requests, reached, say } = setup();
    say("timeless");
    await waitFor("the send", () => reached.length === 1, 5_000);
    assert.equal(requests.length, 1);
    assert.deepEqual(requests[0].qs, { user_id: "@irc_net_bob:example.org" });
  });

  test("a recovered line its room already has (a link of its msgid there) is not sent again, but counts as in Matrix", async () => {
    const { requests, reached, say } = setup({
      links: [
        { roomId: ROOM, eventId: "$old", networkId: "net", msgid: "known", at: 0 },
        { roomId: "!another:example.org", eventId: "$elsewhere", networkId: "net", msgid: "elsewhere", at: 0 },
      ],
    });
    say("already there", { time: SAID_AT, tags: { msgid: "known" }, recovered: true });
    say("in another room only", { time: SAID_AT, tags: { msgid: "elsewhere" }, recovered: true });
    say("new", { time: SAID_AT, tags: { msgid: "fresh" }, recovered: true });
    await waitFor("all handled", () => reached.length === 3, 5_000);
    assert.deepEqual(requests.map((r) => r.body.body), ["in another room only", "new"]);
    assert.deepEqual(reached, ["already there", "in another room only", "new"]);
  });

  test("a ghost the membership cache knows in the room does not join first; one it does not know joins", async () => {
    const known = setup({ membership: "join" });
    known.say("known");
    await waitFor("the send", () => known.reached.length === 1, 5_000);
    assert.deepEqual(known.joins, []);
    const unknown = setup({ membership: null });
    unknown.say("unknown");
    await waitFor("the send", () => unknown.reached.length === 1, 5_000);
    assert.deepEqual(unknown.joins, [ROOM]);
  });

  test("M_FORBIDDEN falls back to the intent's own send (rejoin, power); other refusals keep their errcode and are not retried", async () => {
    const forbidden = setup();
    answer = () => [403, { errcode: "M_FORBIDDEN", error: "not in room" }];
    forbidden.say("let me in");
    await waitFor("the fallback send", () => forbidden.reached.length === 1, 5_000);
    assert.deepEqual(forbidden.plainSends.map((c) => c.body), ["let me in"]);
    const { sendEventAt } = await import("../../src/matrix/sendAt.js");
    const { errcodeOf, isTransient } = await import("../../src/matrix/retry.js");
    setup();
    answer = () => [400, { errcode: "M_BAD_JSON", error: "no" }];
    const intent = { userId: "@g:x", opts: { backingStore: { getMembership: () => "join" } }, matrixClient: { homeserverUrl, accessToken: "t" } };
    const err = await sendEventAt(intent as never, ROOM, "m.room.message", { body: "x" }).catch((e: unknown) => e);
    assert.equal(errcodeOf(err), "M_BAD_JSON");
    assert.equal((err as { statusCode: number }).statusCode, 400);
    assert.equal(isTransient(err), false);
    answer = () => [502, { error: "bad gateway" }];
    assert.equal(isTransient(await sendEventAt(intent as never, ROOM, "m.room.message", { body: "x" }).catch((e: unknown) => e)), true);
    answer = null;
  });
});
