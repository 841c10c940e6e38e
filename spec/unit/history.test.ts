/**
 * Recovered history: which lines of a replay are new (by the channel's position, msgids and
 * whole-second replay times), who may recover them, and how positions are stored.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ChannelPositions, HistoryRecovery, linesToRecover, POSITION_KIND, type ChannelPosition } from "../../src/irc/HistoryRecovery.js";
import type { IrcMessage } from "../../src/irc/IrcConnection.js";
import type { DataStore, KeyedRecord } from "../../src/store/DataStore.js";
import { timestampFor } from "../../src/matrix/sendAt.js";

const T = Date.parse("2026-11-24T12:00:05.000Z");

/** A replayed line: InspIRCd gives whole seconds. */
const line = (text: string, time: number | undefined, msgid?: string, nick = "bob"): IrcMessage => ({
  kind: "privmsg",
  nick,
  ident: nick,
  hostname: "h",
  target: "#c",
  text,
  tags: msgid ? { msgid } : {},
  receivedAt: 0,
  ...(time === undefined ? {} : { time }),
});
const texts = (lines: IrcMessage[]) => lines.map((l) => l.text);
const nothingSeen = () => false;

describe("linesToRecover", () => {
  test("with no position (a channel never bridged), nothing is recovered", () => {
    assert.deepEqual(linesToRecover([line("a", T, "1"), line("b", T, "2")], null, nothingSeen), []);
  });

  test("where the position's msgid is in the replay, exactly the lines after it are new, whatever their times", () => {
    const replay = [line("a", T, "1"), line("b", T, "2"), line("c", T, "3"), line("d", T, "4")];
    // The position's own time (live, with milliseconds) is later than the replay's whole seconds.
    assert.deepEqual(texts(linesToRecover(replay, { time: T + 700, msgid: "2" }, nothingSeen)), ["c", "d"]);
    assert.deepEqual(texts(linesToRecover(replay, { time: T + 700, msgid: "4" }, nothingSeen)), []);
  });

  test("a msgid that went through already is never new", () => {
    const replay = [line("a", T, "1"), line("b", T + 1000, "2"), line("c", T + 2000, "3")];
    assert.deepEqual(texts(linesToRecover(replay, { time: T - 5000, msgid: "0" }, (id) => id === "2")), ["a", "c"]);
  });

  test("without the position's msgid in the replay: older lines are skipped, later ones recovered", () => {
    const replay = [line("old", T - 3000, "1"), line("older second", T - 1000, "2"), line("new", T + 1000, "3"), line("newer", T + 2000, "4")];
    assert.deepEqual(texts(linesToRecover(replay, { time: T + 500, msgid: "gone" }, nothingSeen)), ["new", "newer"]);
  });

  test("in the position's own second, a line is new only if it has a msgid not seen (a repeat is worse than a gap)", () => {
    const replay = [line("with msgid", T, "9"), line("without", T)];
    assert.deepEqual(texts(linesToRecover(replay, { time: T + 500, msgid: null }, nothingSeen)), ["with msgid"]);
    assert.deepEqual(texts(linesToRecover(replay, { time: T + 500, msgid: null }, (id) => id === "9")), []);
    // A time with milliseconds is exact: not later than the position, not new.
    assert.deepEqual(texts(linesToRecover([line("exact", T + 400, "8")], { time: T + 500, msgid: null }, nothingSeen)), []);
  });

  test("lines without server-time cannot be placed and are skipped", () => {
    assert.deepEqual(linesToRecover([line("a", undefined, "1")], { time: 0, msgid: null }, nothingSeen), []);
  });
});

/** A store holding only keyed records, counting writes. */
function recordStore() {
  const records = new Map<string, KeyedRecord<unknown>>();
  let writes = 0;
  const store = {
    async putRecord(kind: string, key: string, value: unknown) {
      writes += 1;
      records.set(`${kind}\u0000${key}`, { kind, key, value: JSON.parse(JSON.stringify(value)), updatedAt: Date.now() });
    },
    async listRecords(kind: string) {
      return [...records.values()].filter((r) => r.kind === kind);
    },
  } as unknown as DataStore;
  return { store, records, writes: () => writes };
}

function recovery(options: { others?: boolean; own?: string[] } = {}) {
  const { store, writes } = recordStore();
  const positions = new ChannelPositions(store, "net", 60_000);
  const seen = new Set<string>();
  const out: IrcMessage[] = [];
  const msgids = { hasSeen: (channel: string, msgid: string) => seen.has(`${channel} ${msgid}`), markSeen: (channel: string, msgid: string) => void seen.add(`${channel} ${msgid}`) };
  const r = new HistoryRecovery("net", positions, msgids, {
    othersIn: () => options.others ?? false,
    ownNicks: () => (nick) => (options.own ?? []).includes(nick),
    deliver: (msg) => void out.push(msg),
  });
  return { r, positions, out, store, writes, seen };
}

describe("HistoryRecovery", () => {
  test("recovers the lines after the channel's position once, even when two connections replay the same history", () => {
    const { r, out } = recovery();
    r.onLive("#c", line("a", T + 123, "1"));
    const replay = [line("a", T, "1"), line("b", T + 1000, "2"), line("c", T + 1000, "3")];
    r.onReplay({}, "#c", replay);
    r.onReplay({}, "#c", replay);
    assert.deepEqual(texts(out), ["b", "c"]);
  });

  test("a replay to a connection joining beside another of ours is ignored: the live lines went through that one", () => {
    const { r, out } = recovery({ others: true });
    r.onLive("#c", line("a", T, "1"));
    r.onReplay({}, "#c", [line("a", T, "1"), line("b", T + 1000, "2")]);
    assert.deepEqual(out, []);
  });

  test("the bridge's own lines (from Matrix) are not sent back, but move the position", () => {
    const { r, out, positions } = recovery({ own: ["alice[m]"] });
    r.onLive("#c", line("a", T, "1"));
    r.onReplay({}, "#c", [line("a", T, "1"), line("mine", T + 1000, "2", "alice[m]"), line("b", T + 2000, "3")]);
    assert.deepEqual(texts(out), ["b"]);
    assert.deepEqual(positions.get("#c"), { time: T + 2000, msgid: "3" });
  });

  test("a replayed line seen live a moment later is a late copy (its msgid is marked)", () => {
    const { r, seen } = recovery();
    r.onLive("#c", line("a", T, "1"));
    r.onReplay({}, "#c", [line("a", T, "1"), line("b", T + 1000, "2")]);
    assert.ok(seen.has("#c 2"));
  });
});

describe("ChannelPositions", () => {
  test("moves in memory per line; stores where lines reached Matrix, only when flushed (or after a while); loads back", async () => {
    const { store, writes, records } = recordStore();
    const positions = new ChannelPositions(store, "net", 60_000);
    for (let i = 0; i < 100; i++) positions.advance("#c", line(`l${i}`, T + i, `m${i}`));
    for (let i = 0; i < 90; i++) positions.reachedMatrix("#c", line(`l${i}`, T + i, `m${i}`));
    positions.advance("#d", line("x", T, "x1"));
    positions.reachedMatrix("#d", line("x", T, "x1"));
    positions.reachedMatrix("#d", line("no time", undefined, "x2"));
    assert.deepEqual(positions.get("#c"), { time: T + 99, msgid: "m99" }, "where the lines got to");
    assert.deepEqual(positions.deliveredTo("#c"), { time: T + 89, msgid: "m89" }, "where they got to in Matrix");
    assert.equal(writes(), 0, "no write per line");
    await positions.flush();
    assert.equal(writes(), 2, "one write per channel moved");
    assert.deepEqual([...records.values()].map((r) => [r.kind, r.key]), [[POSITION_KIND, "net #c"], [POSITION_KIND, "net #d"]]);
    await positions.flush();
    assert.equal(writes(), 2, "nothing moved, nothing written");

    // After a restart, the ten lines that had not reached Matrix are after the position.
    const again = new ChannelPositions(store, "net");
    await again.load();
    assert.deepEqual(again.get("#c"), { time: T + 89, msgid: "m89" } satisfies ChannelPosition);
    assert.deepEqual(again.get("#d"), { time: T, msgid: "x1" });
    const other = new ChannelPositions(store, "othernet");
    await other.load();
    assert.equal(other.get("#c"), null, "positions are per network");
  });

  test("a replayed line's whole-second time never moves the position back in time", () => {
    const { store } = recordStore();
    const positions = new ChannelPositions(store, "net", 60_000);
    positions.advance("#c", line("live", T + 800, "1"));
    positions.advance("#c", line("replayed", T, "2"));
    assert.deepEqual(positions.get("#c"), { time: T + 800, msgid: "2" });
  });
});

describe("timestampFor (the appservice ts of a line)", () => {
  test("is the IRC time whenever there is one, never in the future of the bridge's clock, and absent otherwise", () => {
    const now = T + 10_000;
    assert.equal(timestampFor(T + 123.9, now), T + 123);
    assert.equal(timestampFor(now + 60_000, now), now, "an IRCd clock ahead of ours is clamped to now");
    assert.equal(timestampFor(undefined, now), undefined);
    assert.equal(timestampFor(Number.NaN, now), undefined);
    assert.equal(timestampFor(0, now), undefined);
  });
});
