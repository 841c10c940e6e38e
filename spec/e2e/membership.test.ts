/**
 * IRC membership seen in Matrix: an IRC user joining, changing nick, parting and quitting
 * moves their ghosts in the linked room, in order with their messages.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { MatrixTestClient, TimelineEvent } from "../harness/matrixClient.js";
import { Stack } from "../harness/stack.js";

describe("IRC membership in Matrix", { timeout: 120_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let roomId: string;

  const membership = (userId: string, state: string) => (e: TimelineEvent) =>
    e.type === "m.room.member" && e.state_key === userId && e.content.membership === state;

  before(async () => {
    stack = await Stack.start();
    alice = await stack.matrixUser("alice");
    roomId = await alice.createRoom({ name: "Members" });
    stack.mappings = { "#members": { roomIds: [roomId] } };
    await stack.startBridge();
  });

  after(async () => {
    await stack?.stop();
  });

  test("join, nick change and part move the ghosts, with display names and reasons", async () => {
    const carol = await stack.ircUser("carol", ["#members"]);
    const joined = await alice.waitForEvent(roomId, membership(stack.ghostId("carol"), "join"), "carol's ghost joining");
    assert.equal(joined.content.displayname, "carol");

    carol.client.changeNick("caroline");
    const left = await alice.waitForEvent(roomId, membership(stack.ghostId("carol"), "leave"), "carol's ghost leaving");
    assert.equal(left.content.reason, "changed nick to caroline");
    const renamed = await alice.waitForEvent(roomId, membership(stack.ghostId("caroline"), "join"), "caroline's ghost joining");
    assert.equal(renamed.content.displayname, "caroline");

    carol.say("#members", "bye all");
    carol.client.part("#members", "off to lunch");
    const parted = await alice.waitForEvent(roomId, membership(stack.ghostId("caroline"), "leave"), "caroline's ghost leaving");
    assert.equal(parted.content.reason, "off to lunch");
    const timeline = alice.timelines.get(roomId)!;
    const said = timeline.findIndex((e) => e.content.body === "bye all");
    assert.ok(said >= 0 && said < timeline.indexOf(parted), "the message comes before the part");
  });

  test("a quit takes the ghost out of the room", async () => {
    const dave = await stack.ircUser("dave", ["#members"]);
    await alice.waitForEvent(roomId, membership(stack.ghostId("dave"), "join"), "dave's ghost joining");
    await dave.quit();
    const left = await alice.waitForEvent(roomId, membership(stack.ghostId("dave"), "leave"), "dave's ghost leaving");
    assert.match(String(left.content.reason), /bye/);
  });

  test("a Matrix user leaving the room parts their puppet from the channel", async () => {
    const eve = await stack.matrixUser("eve");
    const watcher = await stack.ircUser("eyes", ["#members"]);
    await eve.joinRoom(roomId);
    await watcher.waitForRaw("eve's puppet joining", (l) => /:eve\[m\]!\S+ JOIN #members/.test(l));
    await eve.request("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/leave`, {});
    const part = await watcher.waitForRaw("eve's puppet parting", (l) => /:eve\[m\]!\S+ PART #members/.test(l));
    assert.match(part, /Left the Matrix room/);
  });

  test("the bridge's own puppets get no ghosts", async () => {
    await alice.sendText(roomId, "hello");
    await stack.ircUser("watcher", ["#members"]);
    await alice.waitForEvent(roomId, membership(stack.ghostId("watcher"), "join"), "watcher's ghost joining");
    const ghosts = (alice.timelines.get(roomId) ?? []).filter((e) => e.type === "m.room.member" && String(e.state_key).includes("alice"));
    assert.deepEqual(ghosts.map((e) => e.state_key), [alice.userId], "no ghost for alice[m]");
  });
});

describe("membership sync and netsplits", { timeout: 120_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let roomId: string;

  const memberEvents = (userId: string) => (alice.timelines.get(roomId) ?? []).filter((e) => e.type === "m.room.member" && e.state_key === userId);

  before(async () => {
    stack = await Stack.start({ quitPrefix: false });
    stack.networkOverrides = { membership: { syncOnJoin: true, ghostJoinsPerSecond: 20, netsplitTimeoutMs: 4_000 } };
    alice = await stack.matrixUser("alice");
    roomId = await alice.createRoom({ name: "Split" });
    stack.mappings = { "#split": { roomIds: [roomId] } };
  });

  after(async () => {
    await stack?.stop();
  });

  test("people already in the channel when it is linked appear in the room", async () => {
    await Promise.all(["early1", "early2", "early3"].map((n) => stack.ircUser(n, ["#split"])));
    await stack.startBridge();
    for (const nick of ["early1", "early2", "early3"]) {
      const joined = await alice.waitForEvent(roomId, (e) => e.type === "m.room.member" && e.state_key === stack.ghostId(nick) && e.content.membership === "join", `${nick}'s ghost`);
      assert.equal(joined.content.displayname, nick);
    }
  });

  test("a mass quit that looks like a netsplit is held back; those who return cause no churn", async () => {
    const nicks = ["split1", "split2", "split3", "split4"];
    const users = await Promise.all(nicks.map((n) => stack.ircUser(n, ["#split"])));
    for (const nick of nicks) {
      await alice.waitForEvent(roomId, (e) => e.type === "m.room.member" && e.state_key === stack.ghostId(nick) && e.content.membership === "join", `${nick}'s ghost`);
    }
    const quitAt = Date.now();
    await Promise.all(users.map((u) => new Promise<void>((resolve) => {
      u.client.once("close", () => resolve());
      u.client.quit("irc.hub.test irc.leaf.test");
    })));
    // split1 and split2 come back within the window; split3 and split4 do not.
    await Promise.all(["split1", "split2"].map((n) => stack.ircUser(n, ["#split"])));
    const gone = await Promise.all(
      ["split3", "split4"].map((n) =>
        alice.waitForEvent(roomId, (e) => e.type === "m.room.member" && e.state_key === stack.ghostId(n) && e.content.membership === "leave", `${n}'s ghost leaving`, 20_000),
      ),
    );
    assert.ok(Date.now() - quitAt >= 4_000, "the leaves wait for the netsplit timeout");
    assert.equal(gone[0].content.reason, "irc.hub.test irc.leaf.test");
    for (const nick of ["split1", "split2"]) {
      assert.deepEqual(memberEvents(stack.ghostId(nick)).map((e) => e.content.membership), ["join"], `${nick} never left`);
    }
  });
});
