/**
 * Provisioning's pure logic: the `!irc` room command, an operator's answers, who counts as an
 * operator, who may change a room's power levels; and pending requests kept across a restart
 * (a real NeDB store) with their deadlines re-armed.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ChannelOps, holdsOp, OpsListing } from "../../src/provisioning/ChannelOps.js";
import { RoomCommands } from "../../src/provisioning/RoomCommands.js";
import { parseConfig } from "../../src/config/load.js";
import { spanOf } from "../../src/provisioning/LinkRequests.js";
import { parseOpAnswer, parseRoomCommand, plainForIrc } from "../../src/provisioning/parse.js";
import { PendingRequests, type PendingLink } from "../../src/provisioning/PendingRequests.js";
import { mayChangePowerLevels } from "../../src/provisioning/RoomSide.js";
import { NedbDataStore } from "../../src/store/NedbDataStore.js";
import { waitFor } from "../harness/wait.js";

describe("!irc room command parsing", () => {
  test("link with a network, a channel, an op nick and --no-approval", () => {
    assert.deepEqual(parseRoomCommand("!irc link libera #rust chief"), { kind: "link", networkId: "libera", channel: "#rust", opNick: "chief", noApproval: false });
    assert.deepEqual(parseRoomCommand("  !IRC LINK libera #rust  "), { kind: "link", networkId: "libera", channel: "#rust", opNick: null, noApproval: false });
    assert.deepEqual(parseRoomCommand("!irc link libera #rust --no-approval"), { kind: "link", networkId: "libera", channel: "#rust", opNick: null, noApproval: true });
  });

  test("the network may be left out: the first word that looks like a channel is the channel", () => {
    assert.deepEqual(parseRoomCommand("!irc link #rust chief"), { kind: "link", networkId: null, channel: "#rust", opNick: "chief", noApproval: false });
    assert.deepEqual(parseRoomCommand("!irc unlink &local"), { kind: "unlink", networkId: null, channel: "&local" });
  });

  test("unlink, links, help; not a command at all", () => {
    assert.deepEqual(parseRoomCommand("!irc unlink libera #rust"), { kind: "unlink", networkId: "libera", channel: "#rust" });
    assert.deepEqual(parseRoomCommand("!irc links"), { kind: "links" });
    assert.deepEqual(parseRoomCommand("!irc"), { kind: "help" });
    assert.deepEqual(parseRoomCommand("!irc help"), { kind: "help" });
    assert.equal(parseRoomCommand("hello !irc link"), null);
    assert.equal(parseRoomCommand("!ircx link a #b"), null);
  });

  test("mistakes get the reason and the usage", () => {
    for (const [text, why] of [
      ["!irc link libera rust", /which channel/],
      ["!irc link libera #rust chief extra", /one operator/],
      ["!irc unlink libera #rust chief", /network and a channel only/],
      ["!irc link libera #rust --force", /unknown option --force/],
      ["!irc frobnicate", /unknown command !irc frobnicate/],
      ["!irc links #rust", /takes nothing/],
    ] as const) {
      const parsed = parseRoomCommand(text);
      assert.equal(parsed?.kind, "invalid", text);
      assert.match((parsed as { message: string }).message, why);
      assert.match((parsed as { message: string }).message, /!irc link <network> <#channel>/);
    }
  });
});

describe("an operator's answers", () => {
  test("yes and no, short or long, any case, with a trailing . or !", () => {
    for (const t of ["yes", "Y", "YES!", " yes. "]) assert.deepEqual(parseOpAnswer(t), { kind: "yes" }, t);
    for (const t of ["no", "N", "No."]) assert.deepEqual(parseOpAnswer(t), { kind: "no" }, t);
  });

  test("!unlink with or without a channel; anything else is other", () => {
    assert.deepEqual(parseOpAnswer("!unlink #rust"), { kind: "unlink", channel: "#rust" });
    assert.deepEqual(parseOpAnswer("!UNLINK"), { kind: "unlink", channel: null });
    for (const t of ["yes please", "nope", "maybe", "", "y y", "!unlink #a #b"]) assert.deepEqual(parseOpAnswer(t), { kind: "other" }, t);
  });
});

describe("who is an operator, who may change power levels", () => {
  test("+o or any prefix ranked above it in PREFIX", () => {
    assert.equal(holdsOp("o", "qaohv"), true);
    assert.equal(holdsOp("av", "qaohv"), true);
    assert.equal(holdsOp("q", "qaohv"), true);
    assert.equal(holdsOp("hv", "qaohv"), false);
    assert.equal(holdsOp("", "qaohv"), false);
    assert.equal(holdsOp("o", "ov"), true);
    assert.equal(holdsOp("o", ""), true, "a server with no PREFIX: o alone");
  });

  test("power levels: the level m.room.power_levels needs, users_default, creators of v12 rooms", () => {
    const none = new Set<string>();
    assert.equal(mayChangePowerLevels({ users: { "@m:x": 100 } }, "@m:x", none, false), true);
    assert.equal(mayChangePowerLevels({ users: { "@m:x": 50 } }, "@m:x", none, false), true, "state_default 50 when unsaid");
    assert.equal(mayChangePowerLevels({ users: { "@m:x": 50 }, events: { "m.room.power_levels": 100 } }, "@m:x", none, false), false);
    assert.equal(mayChangePowerLevels({ users_default: 60, state_default: 60 }, "@u:x", none, false), true);
    assert.equal(mayChangePowerLevels({ users: {} }, "@u:x", none, false), false);
    assert.equal(mayChangePowerLevels({ users: { "@b:x": 50 } }, "@c:x", new Set(["@c:x"]), true), true, "v12 creator outranks everyone");
    assert.equal(mayChangePowerLevels({ users: {} }, "@c:x", new Set(["@c:x"]), false), false, "before v12 a creator is what the levels say");
    assert.equal(mayChangePowerLevels(null, "@c:x", new Set(["@c:x"]), false), true, "no power levels: the creator");
  });

  test("spans read as people say them", () => {
    assert.equal(spanOf(5_000), "5 seconds");
    assert.equal(spanOf(1_000), "1 second");
    assert.equal(spanOf(300_000), "5 minutes");
  });
});

describe("pending link requests", () => {
  let dir: string;
  const request = (over: Partial<PendingLink> = {}): PendingLink => ({
    networkId: "libera",
    channel: "#rust",
    channelName: "#Rust",
    roomId: "!r:x",
    userId: "@m:x",
    opNick: "Chief",
    opFolded: "chief",
    sealedKey: null,
    createdAt: Date.now(),
    expiresAt: Date.now() + 60_000,
    ...over,
  });

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "pending-test-"));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  test("one per operator; kept across a restart; an overdue one expires at load; a settled one is gone", async () => {
    let store = new NedbDataStore(dir);
    await store.open();
    const expired: PendingLink[] = [];
    let pending = new PendingRequests(store, (r) => expired.push(r));
    const waiting = request();
    const overdue = request({ opNick: "Slow", opFolded: "slow", channel: "#slow", expiresAt: Date.now() + 300 });
    const answered = request({ opNick: "Quick", opFolded: "quick", channel: "#quick" });
    await pending.add(waiting);
    await pending.add(overdue);
    await pending.add(answered);
    await assert.rejects(pending.add(request({ roomId: "!other:x" })), /already pending/);
    assert.equal(pending.forRoom("!r:x", "libera", "#rust"), waiting);
    assert.equal(pending.take(answered), true);
    assert.equal(pending.take(answered), false, "settled once only");
    pending.stop();
    await store.close();

    // The bridge is down past the overdue request's deadline.
    await new Promise((r) => setTimeout(r, 400));
    store = new NedbDataStore(dir);
    await store.open();
    pending = new PendingRequests(store, (r) => expired.push(r));
    await pending.load();
    await waitFor("the overdue request to expire", () => expired.length === 1, 5_000);
    assert.equal(expired[0].opFolded, "slow");
    assert.deepEqual(pending.of("libera", "chief"), waiting);
    assert.equal(pending.of("libera", "quick"), null);
    assert.deepEqual((await store.listRecords("linkRequest")).map((r) => (r.value as PendingLink).opFolded), ["chief"]);

    // The operator changed nick: the request follows.
    await pending.rename("libera", "chief", "Boss", "boss");
    assert.equal(pending.of("libera", "chief"), null);
    assert.equal(pending.of("libera", "boss")?.opNick, "Boss");
    pending.stop();
    await store.close();
  });
});

describe("what Matrix users choose, in a PM to an operator", () => {
  test("no control or bidi characters (IRC formatting, CTCP), and a bounded length", () => {
    assert.equal(plainForIrc("\x02bold\x02 \x01DCC SEND x\x01 \x0304red\u202Eevil", 100), "bold DCC SEND x 04redevil");
    const long = plainForIrc("n".repeat(60_000), 80);
    assert.equal(long.length, 80);
    assert.ok(long.endsWith("…"));
  });
});

describe("asking IRC who the operators are is bounded (anyone can make the bridge ask)", () => {
  /** A pool whose bot is not in the channel: every lookup would be a WHO; `replies` is what the server answers. */
  const fakePool = (replies: { nick: string; modes: string; channel?: string }[], networkId = "net") => {
    const asked: string[] = [];
    let release: () => void = () => undefined;
    let gate: Promise<void> | null = null;
    const pool = {
      networkId,
      config: { name: "Net", connectTimeoutMs: 1_000 },
      roster: { knows: () => false },
      isOwnNick: () => false,
      bot: {
        isJoined: () => false,
        prefixModes: "qaohv",
        isSelf: (n: string) => n === "Bot",
        casefold: (s: string) => s.toLowerCase(),
        whenConnected: async () => undefined,
        commands: {
          who: async (channel: string) => {
            asked.push(channel);
            if (gate) await gate;
            return replies;
          },
        },
      },
    };
    return { pool: pool as never, asked, hold: () => (gate = new Promise<void>((r) => (release = r))), release: () => release() };
  };

  test("one WHO per channel in flight (the others share it); a later check asks again", async () => {
    const ops = new ChannelOps();
    const { pool, asked, hold, release } = fakePool([{ nick: "chief", modes: "o", channel: "#Rust" }]);
    hold();
    const together = [ops.opsOf(pool, "#rust"), ops.opsOf(pool, "#RUST"), ops.opsOf(pool, "#rust")];
    release();
    assert.deepEqual(await Promise.all(together), [["chief"], ["chief"], ["chief"]]);
    assert.equal(asked.length, 1);
    // An operator's answer is checked afresh: one de-opped a moment ago must not approve.
    await ops.opsOf(pool, "#rust");
    assert.equal(asked.length, 2);
  });

  test("listings for people are kept a minute, one at a time per channel; failures are not kept", async () => {
    let now = 0;
    let calls = 0;
    let fail = false;
    const listing = new OpsListing(async () => {
      calls++;
      if (fail) throw new Error("no");
      return ["chief"];
    }, 60_000, 1_000, () => now);
    assert.deepEqual(await Promise.all([listing.channelOps("net", "#rust"), listing.channelOps("net", "#Rust")]), [["chief"], ["chief"]]);
    assert.equal(calls, 1);
    now += 59_000;
    await listing.channelOps("net", "#rust");
    assert.equal(calls, 1, "kept");
    now += 2_000;
    fail = true;
    await assert.rejects(listing.channelOps("net", "#rust"));
    fail = false;
    await listing.channelOps("net", "#rust");
    assert.equal(calls, 3, "asked again after a minute, and after a failure");
  });

  test("WHOs per network are rate limited: past the burst, an error and nothing sent", async () => {
    const ops = new ChannelOps({ now: () => 0, whoLimit: { burst: 3, perMinute: 3 } });
    const { pool, asked } = fakePool([]);
    for (let i = 0; i < 3; i++) await ops.opsOf(pool, `#c${i}`);
    await assert.rejects(ops.opsOf(pool, "#c9"), /too many channel lookups on Net/);
    assert.equal(asked.length, 3);
    // Another network has its own budget.
    const other = fakePool([], "other");
    await ops.opsOf(other.pool, "#c9");
    assert.equal(other.asked.length, 1);
  });

  test("only replies about the channel asked count (a server may answer WHO as a mask)", async () => {
    const ops = new ChannelOps();
    const { pool } = fakePool([
      { nick: "chief", modes: "o", channel: "#rust" },
      { nick: "elsewhere", modes: "o", channel: "#rustaceans" },
      { nick: "nochannel", modes: "o" },
    ]);
    assert.deepEqual(await ops.opsOf(pool, "#Rust"), ["chief"]);
  });
});

describe("the room command asks IRC only for a room moderator", () => {
  const config = parseConfig({
    homeserver: { url: "http://localhost:8008", domain: "example.org" },
    provisioning: { enabled: true },
    networks: { net: { name: "Net", address: "irc.example.org", botNick: "Bot", ghostUserTemplate: "net_$NICK", aliasTemplate: "net_$CHANNEL" } },
  });
  test("!irc link #chan (listing operators): refused before any WHO unless moderator or bridge admin", async () => {
    const lookups: string[] = [];
    const notices: string[] = [];
    const provisioner = { channelOps: async (_n: string, c: string) => (lookups.push(c), ["chief"]) } as never;
    const room = { notice: async (_r: string, text: string) => void notices.push(text), moderatorStatus: async (_r: string, u: string) => (u === "@mod:example.org" ? ("ok" as const) : ("no_power" as const)) };
    const commands = new RoomCommands(config, provisioner, room, (u) => u === "@admin:example.org");
    const say = (sender: string) => commands.onMessage({ type: "m.room.message", room_id: "!r:example.org", sender, content: { msgtype: "m.text", body: "!irc link #rust" } });
    await say("@stranger:example.org");
    assert.deepEqual(lookups, []);
    assert.match(notices.at(-1)!, /only a moderator of this room/);
    await say("@mod:example.org");
    await say("@admin:example.org");
    assert.deepEqual(lookups, ["#rust", "#rust"]);
    assert.match(notices.at(-1)!, /Operators of #rust now: chief/);
  });
});
