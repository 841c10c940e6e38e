/** Chanop sync's pure rules: PREFIX, levels from modes, merging without lowering admins' levels, channel modes. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { chanTypesOf } from "../../src/format/prefix.js";
import { EVENTS_DEFAULT, levelForModes, mergePowerLevels, modeForLevel, parsePrefix, shrinkPowerLevels } from "../../src/bridge/chanopLevels.js";
import { applyModeChanges, relevantModes } from "../../src/bridge/ChannelModes.js";
import { EventEmitter } from "node:events";
import { ChannelRoster } from "../../src/irc/ChannelRoster.js";
import type { IrcConnection } from "../../src/irc/IrcConnection.js";

/** A stand-in for the bot's connection: what the roster listens to and asks. */
function fakeConnection(prefixModes = "ov") {
  const c = new EventEmitter() as EventEmitter & { casefold(s: string): string; prefixModes: string };
  c.casefold = (s: string) => s.toLowerCase();
  c.prefixModes = prefixModes;
  return c;
}

const MAP = { q: 95, a: 75, o: 50, h: 25, v: 1 };
const BOT = "@bot:hs";

describe("chanop levels", () => {
  test("PREFIX: irc-framework's parsed form and the raw token; junk gives nothing", () => {
    assert.equal(parsePrefix([{ symbol: "@", mode: "o" }, { symbol: "+", mode: "v" }]), "ov");
    assert.equal(parsePrefix("(qaohv)~&@%+"), "qaohv");
    assert.equal(parsePrefix([{ symbol: "@", mode: "o o" }, null, 3]), "");
    assert.equal(parsePrefix(undefined), "");
    assert.equal(parsePrefix("garbage"), "");
  });

  test("CHANTYPES: irc-framework's array joined (once per array), the raw token, and #& until the server says", () => {
    const types = ["#", "&"];
    assert.equal(chanTypesOf(types), "#&");
    types.push("!"); // irc-framework replaces the array at each ISUPPORT; the same array is not joined again
    assert.equal(chanTypesOf(types), "#&");
    assert.equal(chanTypesOf(["#"]), "#");
    assert.equal(chanTypesOf("#"), "#");
    assert.equal(chanTypesOf(undefined), "#&");
    assert.equal(chanTypesOf(true), "#&");
  });

  test("a level is the highest of the modes still held, among those the server offers, below the bot", () => {
    assert.equal(levelForModes("ov", "ov", MAP, 100), 50);
    assert.equal(levelForModes("v", "ov", MAP, 100), 1, "-o on a voiced user leaves the voice level");
    assert.equal(levelForModes("", "ov", MAP, 100), null);
    assert.equal(levelForModes("q", "ov", MAP, 100), null, "a mode the server does not offer counts for nothing");
    assert.equal(levelForModes("q", "qov", MAP, 60), 59, "never at or above the bot's level");
  });

  test("merge: sets wanted levels and remembers them; an unchanged room is unchanged", () => {
    const current = { users: { [BOT]: 100 }, users_default: 0 };
    const first = mergePowerLevels({ current, desired: new Map([["@a:hs", 50]]), eventsDefault: null, owned: new Map(), botUserId: BOT });
    assert.equal(first.changed, true);
    assert.equal(first.content.users!["@a:hs"], 50);
    assert.deepEqual([...first.owned], [["@a:hs", 50]]);
    const again = mergePowerLevels({ current: first.content, desired: new Map([["@a:hs", 50]]), eventsDefault: null, owned: first.owned, botUserId: BOT });
    assert.equal(again.changed, false);
  });

  test("merge: an entry the bridge set goes back to the default when the mode is gone", () => {
    const current = { users: { [BOT]: 100, "@a:hs": 50 } };
    const r = mergePowerLevels({ current, desired: new Map(), eventsDefault: null, owned: new Map([["@a:hs", 50]]), botUserId: BOT });
    assert.equal(r.changed, true);
    assert.equal(r.content.users!["@a:hs"], undefined);
    assert.equal(r.owned.size, 0);
  });

  test("merge: a level an admin changed by hand is never lowered, and is no longer the bridge's", () => {
    const current = { users: { [BOT]: 100, "@a:hs": 60, "@b:hs": 50 } };
    const owned = new Map([["@a:hs", 50]]); // the bridge set 50, an admin raised it to 60; @b was set by an admin
    const r = mergePowerLevels({ current, desired: new Map(), eventsDefault: null, owned, botUserId: BOT });
    assert.equal(r.changed, false);
    assert.equal(r.owned.size, 0);
    const raised = mergePowerLevels({ current, desired: new Map([["@b:hs", 1]]), eventsDefault: null, owned: new Map(), botUserId: BOT });
    assert.equal(raised.content.users!["@b:hs"], 50, "not lowered to the voice level either");
  });

  test("merge: levels at or above the bot's are left alone; wishes are kept below it", () => {
    const current = { users: { [BOT]: 50, "@boss:hs": 50 } };
    const r = mergePowerLevels({ current, desired: new Map([["@boss:hs", 1], ["@op:hs", 95]]), eventsDefault: null, owned: new Map(), botUserId: BOT });
    assert.equal(r.content.users!["@boss:hs"], 50);
    assert.equal(r.content.users!["@op:hs"], 49);
  });

  test("merge: room version 12 creators are never named in users; a creator bot is above everyone", () => {
    const current = { users: {} as Record<string, number> };
    const r = mergePowerLevels({ current, desired: new Map([["@creator:hs", 50], ["@op:hs", 95]]), eventsDefault: null, owned: new Map(), botUserId: BOT, botLevel: Number.MAX_SAFE_INTEGER, untouchable: new Set([BOT, "@creator:hs"]) });
    assert.deepEqual(r.content.users, { "@op:hs": 95 });
  });

  test("merge: +m sets events_default, -m puts back only what the bridge set", () => {
    const current = { users: { [BOT]: 100 }, events_default: 0 };
    const m = mergePowerLevels({ current, desired: new Map(), eventsDefault: 1, owned: new Map(), botUserId: BOT });
    assert.equal(m.content.events_default, 1);
    assert.equal(m.owned.get(EVENTS_DEFAULT), 1);
    const unm = mergePowerLevels({ current: m.content, desired: new Map(), eventsDefault: null, owned: m.owned, botUserId: BOT });
    assert.equal(unm.content.events_default, 0);
    const adminSet = mergePowerLevels({ current: { ...current, events_default: 10 }, desired: new Map(), eventsDefault: 1, owned: new Map(), botUserId: BOT });
    assert.equal(adminSet.changed, false, "an events_default an admin set is theirs");
  });

  test("shrink: default-level entries first, then users neither in the room nor wanted, then low ghosts until it fits; never the bot", () => {
    const content = { users: { [BOT]: 100, "@d:hs": 0, "@gone:hs": 50, "@irc_x:hs": 1, "@irc_op:hs": 50, "@here:hs": 50 } };
    const s0 = shrinkPowerLevels(content, 0, () => true, () => false, BOT);
    assert.deepEqual(Object.keys(s0.content.users!).sort(), [BOT, "@gone:hs", "@here:hs", "@irc_op:hs", "@irc_x:hs"].sort());
    const s1 = shrinkPowerLevels(s0.content, 1, (u) => u !== "@gone:hs", () => false, BOT);
    assert.equal(s1.content.users!["@gone:hs"], undefined);
    const s2 = shrinkPowerLevels(s1.content, 2, () => true, (u) => u.startsWith("@irc_"), BOT, undefined, 60);
    assert.deepEqual(Object.keys(s2.content.users!).sort(), [BOT, "@here:hs", "@irc_op:hs"].sort(), "the voiced ghost goes first, and enough is enough");
    const many = { users: Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`@irc_testnet_user${i}:localhost`, 1])) };
    const fitted = shrinkPowerLevels(many, 2, () => true, () => true, BOT, 100);
    const size = Buffer.byteLength(JSON.stringify(fitted.content));
    assert.ok(size <= 60_000 && size > 55_000, `keeps as many as fit (${size} bytes)`);
  });

  test("Matrix levels back to modes: the highest grantable mode reached", () => {
    assert.equal(modeForLevel(50, "qaohv", MAP), "o");
    assert.equal(modeForLevel(100, "qaohv", MAP), "o", "q and a are not given from Matrix");
    assert.equal(modeForLevel(30, "ov", MAP), "v");
    assert.equal(modeForLevel(0, "ov", MAP), null);
  });
});

describe("channel modes", () => {
  test("only i, k, m, p and s matter; a key's parameter is not a mode", () => {
    assert.equal(relevantModes("+ntk secret"), "k");
    assert.equal(relevantModes("+imsp"), "imps");
    assert.equal(relevantModes(""), "");
  });

  test("MODE changes apply in order", () => {
    assert.equal(applyModeChanges("", [{ mode: "+i" }, { mode: "+k" }, { mode: "+o" }]), "ik");
    assert.equal(applyModeChanges("ik", [{ mode: "-i" }]), "k");
    assert.equal(applyModeChanges("m", [{ mode: "-m" }, { mode: "+s" }]), "s");
  });
});

describe("channel roster prefixes", () => {
  test("NAMES, MODE, nick changes and leaving keep each member's prefix modes; odd MODEs change nothing", () => {
    const c = fakeConnection("ov");
    const roster = new ChannelRoster(c as unknown as IrcConnection);
    let changes = 0;
    roster.on("prefixes", () => changes++);
    c.emit("membership", { type: "names", channel: "#c", nicks: ["Op", "Voiced", "plain"], modes: ["ov", "v", ""] });
    assert.equal(roster.prefixesOf("#c", "op"), "ov");
    c.emit("channelMode", { channel: "#C", nick: "Op", changes: [{ mode: "-o", param: "op" }] });
    assert.equal(roster.prefixesOf("#c", "Op"), "v", "-o leaves the voice");
    c.emit("channelMode", { channel: "#c", nick: "Op", changes: [{ mode: "+q", param: "plain" }, { mode: "+o", param: "stranger" }, { mode: "+v", param: null }] });
    assert.equal(roster.prefixesOf("#c", "plain"), "", "a mode the server does not offer");
    assert.equal(roster.prefixesOf("#c", "stranger"), "", "someone not in the channel");
    c.emit("membership", { type: "nick", nick: "Voiced", newNick: "Loud" });
    assert.equal(roster.prefixesOf("#c", "Loud"), "v");
    assert.equal(roster.prefixesOf("#c", "Voiced"), "");
    c.emit("membership", { type: "part", nick: "Loud", channel: "#c", reason: "" });
    assert.equal(roster.prefixesOf("#c", "Loud"), "");
    c.emit("membership", { type: "quit", nick: "Op", reason: "" });
    assert.deepEqual([...roster.withPrefixes("#c")], []);
    assert.equal(changes, 5, "names, -o, rename, part, quit");
  });
});
