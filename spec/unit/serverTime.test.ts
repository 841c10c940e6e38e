/**
 * IRC → Matrix stamps each line with its IRC server-time (the appservice `ts` parameter), keeps
 * one transaction ID across retries, and does not send a recovered line its room already has.
 * A fake intent records the client-server requests the bridge makes.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { describe, test } from "node:test";
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

function setup(options: { failFirst?: boolean; links?: MessageLink[] } = {}) {
  const requests: { path: string; qs: Record<string, unknown> | null; body: Record<string, unknown> }[] = [];
  const plainSends: Record<string, unknown>[] = [];
  let fail = options.failFirst ?? false;
  const intent = {
    userId: "@irc_net_bob:example.org",
    async join() {
      return ROOM;
    },
    async sendEvent(_roomId: string, _type: string, content: Record<string, unknown>) {
      plainSends.push(content);
      return { event_id: `$plain${plainSends.length}` };
    },
    matrixClient: {
      async doRequest(_method: string, path: string, qs: Record<string, unknown> | null, body: Record<string, unknown>) {
        requests.push({ path, qs, body });
        if (fail) {
          fail = false;
          throw Object.assign(new Error("gateway timeout"), { statusCode: 504 });
        }
        return { event_id: `$ev${requests.length}` };
      },
    },
  };
  const ghosts = { userIdFor: () => intent.userId, intentFor: async () => intent } as unknown as Ghosts;
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
  return { requests, plainSends, reached, linked, say };
}

describe("IRC server-time on Matrix events", () => {
  test("a line with a server time is sent with it as the appservice ts", async () => {
    const { requests, reached, say } = setup();
    say("hello", { time: SAID_AT, tags: { msgid: "m1" } });
    await waitFor("the send", () => reached.length === 1, 5_000);
    assert.equal(requests.length, 1);
    assert.deepEqual(requests[0].qs, { ts: SAID_AT });
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
    assert.equal(requests[0].qs, null);
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
});
