/**
 * Kicks both ways, with IRC's channel operators keeping the authority, and a user whose
 * puppet cannot join the channel being taken out of the room (removeOnJoinFailure).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient, TimelineEvent } from "../harness/matrixClient.js";
import { Stack } from "../harness/stack.js";

describe("kicks both ways", { timeout: 180_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let chief: IrcTestClient;
  let portal: string;
  let mapped: string;
  const member = (userId: string, membership: string) => (e: TimelineEvent) =>
    e.type === "m.room.member" && e.state_key === userId && e.content.membership === membership;

  before(async () => {
    stack = await Stack.start();
    stack.networkOverrides = { membership: { removeOnJoinFailure: true } };
    alice = await stack.matrixUser("alice");
    mapped = await alice.createRoom({ name: "Mapped" });
    stack.mappings = { "#modmap": { roomIds: [mapped] } };
    // chief creates both channels first, so chief is their operator.
    chief = await stack.ircUser("chief", ["#mod", "#modmap"]);
    await stack.startBridge();
    portal = await alice.joinRoom(`#irc_testnet_#mod:${stack.synapse.serverName}`);
    await chief.waitForRaw("alice[m] joining #mod", (l) => /:alice\[m\]!\S+ JOIN :?#mod( |$)/.test(l));
  });

  after(async () => {
    await stack?.stop();
  });

  test("a kick on IRC removes the Matrix user from the room, with kicker and reason", async () => {
    chief.client.raw("KICK", "#mod", "alice[m]", "behave please");
    const kicked = await alice.waitForEvent(portal, member(alice.userId, "leave"), "alice being kicked");
    assert.match(String(kicked.content.reason), /Kicked from #mod on IRC by chief: behave please/);
  });

  test("a Matrix kick of an IRC user is done on IRC only by a channel operator", async () => {
    const troll = await stack.ircUser("troll", ["#modmap"]);
    await alice.waitForEvent(mapped, member(stack.ghostId("troll"), "join"), "troll's ghost joining");
    await alice.sendText(mapped, "I am here"); // alice's puppet joins #modmap
    await chief.waitForLine((l) => l.text === "I am here");

    const kick = (reason: string) =>
      alice.request("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(mapped)}/kick`, { user_id: stack.ghostId("troll"), reason });
    await kick("spam");
    const notice = await alice.waitForMessage(mapped, (e) => e.content.msgtype === "m.notice" && /troll is still in #modmap/.test(String(e.content.body)));
    assert.match(String(notice.content.body), /channel op/i, "IRC's reason is given");

    chief.client.raw("MODE", "#modmap", "+o", "alice[m]");
    await chief.waitForRaw("alice[m] made operator", (l) => /MODE #modmap \+o :?alice\[m\]/.test(l));
    troll.say("#modmap", "I'm back");
    await alice.waitForMessage(mapped, (e) => e.content.body === "I'm back");
    await kick("spam again");
    const line = await troll.waitForRaw("the kick", (l) => /:alice\[m\]!\S+ KICK #modmap troll :spam again/.test(l));
    assert.ok(line);
  });

  test("a user whose puppet is banned from the channel is told and taken out of the room", async () => {
    chief.client.raw("MODE", "#mod", "+b", "bob*!*@*");
    await chief.waitForRaw("the ban", (l) => /MODE #mod \+b :?bob\*!\*@\*/.test(l));
    const watcher = await stack.matrixUser("watcher");
    await watcher.joinRoom(portal);
    const bob = await stack.matrixUser("bob");
    await bob.joinRoom(portal);
    const removed = await watcher.waitForEvent(portal, member(bob.userId, "leave"), "bob being removed");
    assert.match(String(removed.content.reason), /could not join #mod on TestNet/);
    const told = watcher.messages(portal, (e) => e.content.msgtype === "m.notice" && String(e.content.body).startsWith(`${bob.userId}: you could not join`));
    assert.equal(told.length, 1, "bob is told why");
  });

  test("a message the channel refuses (+m) is reported to its sender, not silently lost", async () => {
    const carl = await stack.matrixUser("carl");
    await carl.joinRoom(portal);
    await chief.waitForRaw("carl[m] joining #mod", (l) => /:carl\[m\]!\S+ JOIN :?#mod( |$)/.test(l));
    chief.client.raw("MODE", "#mod", "+m");
    await chief.waitForRaw("+m", (l) => /MODE #mod :?\+m/.test(l));
    await carl.sendText(portal, "can anyone hear me?");
    const notice = await carl.waitForMessage(portal, (e) => e.content.msgtype === "m.notice" && String(e.content.body).startsWith(`${carl.userId}: your message could not be sent`));
    assert.match(String(notice.content.body), /#mod refused it/);
  });
});
