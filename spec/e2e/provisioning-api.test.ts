/**
 * The provisioning HTTP API against the real thing: an integration manager (the shared secret)
 * links a moderator's room through `POST link`, the channel operator approves by PM on IRC,
 * and messages flow; a widget exchanges a real OpenID token from Synapse for a session;
 * refusals (wrong token, no power) have the reference bridge's errors. One Stack for the file,
 * the API on the appservice listener under its default prefix.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient } from "../harness/matrixClient.js";
import { NETWORK, Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";

const SECRET = "e2e-provisioning-secret-0123456789abcdef";

interface Answer<T = Record<string, unknown>> {
  status: number;
  json: T & { errcode?: string; error?: string };
}

describe("provisioning HTTP API", { timeout: 300_000 }, () => {
  let stack: Stack;
  let mod: MatrixTestClient;
  let pleb: MatrixTestClient;
  let chief: IrcTestClient;
  let dave: IrcTestClient;
  let botId: string;
  let mappedRoom: string;
  let plumbedRoom: string;
  /** remote_room_server: the test network's IRC server host. */
  let server: string;

  const api = async <T = Record<string, unknown>>(method: string, path: string, body?: unknown, token = SECRET): Promise<Answer<T>> => {
    const res = await fetch(`http://127.0.0.1:${stack.bridgePort}/_matrix/provision/v1${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(40_000),
    });
    return { status: res.status, json: (await res.json()) as Answer<T>["json"] };
  };
  const links = (roomId: string, token = SECRET) => api<Record<string, unknown>[]>("GET", `/listlinks/${encodeURIComponent(roomId)}`, undefined, token);

  before(async () => {
    stack = await Stack.start();
    botId = `@${stack.registration.sender_localpart}:${stack.synapse.serverName}`;
    server = stack.ircHost;
    [mod, pleb] = await Promise.all([stack.matrixUser("mod"), stack.matrixUser("pleb")]);
    // A room mapped in the config, to be listed by listlinks.
    mappedRoom = await mod.createRoom({ name: "Mapped room" });
    stack.mappings = { "#mapped": { roomIds: [mappedRoom] } };
    const secretFile = join(stack.dir, "provisioning.secret");
    writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
    stack.configOverrides = {
      provisioning: { http: { enabled: true, secretFile, openId: { serverUrls: { [stack.synapse.serverName]: stack.synapse.url } } } },
    };
    await stack.startBridge();
    [chief, dave] = await Promise.all([stack.ircUser("chief"), stack.ircUser("dave")]);
    // The first to join a channel is its operator: chief; dave is a plain member.
    await chief.join("#plumbed");
    await dave.join("#plumbed");
  });

  after(async () => {
    await stack?.stop();
  });

  test("a wrong token is 401 M_AS_BAD_TOKEN; querynetworks, limits and listlinks answer with the secret", async () => {
    const wrong = await api("GET", "/querynetworks", undefined, "not-the-secret");
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.errcode, "M_AS_BAD_TOKEN");
    const wrongLink = await api("POST", "/link", { remote_room_server: server, remote_room_channel: "#plumbed", matrix_room_id: mappedRoom, op_nick: "chief", user_id: mod.userId }, "not-the-secret");
    assert.equal(wrongLink.status, 401);

    const networks = await api("GET", "/querynetworks");
    assert.equal(networks.status, 200);
    assert.deepEqual(networks.json, { servers: [{ network_id: NETWORK, bot_user_id: botId, desc: "TestNet", fields: { domain: server } }] });

    const limits = await api("GET", "/limits");
    assert.equal(limits.status, 200);
    assert.deepEqual(limits.json, { count: 1, limit: false });

    const listed = await links(mappedRoom);
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.json, [{ matrix_room_id: mappedRoom, remote_room_channel: "#mapped", remote_room_server: server, network_id: NETWORK, origin: "config" }]);

    const unknown = await api("POST", "/querylink", { remote_room_server: "irc.example.net", remote_room_channel: "#plumbed" });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.errcode, "IRC_UNKNOWN_NETWORK");
  });

  test("exchange_openid takes a real OpenID token from Synapse; the session acts for its user only", async () => {
    const openId = await mod.request<{ access_token: string; matrix_server_name: string }>("POST", `/_matrix/client/v3/user/${encodeURIComponent(mod.userId)}/openid/request_token`, {});
    assert.equal(openId.matrix_server_name, stack.synapse.serverName);
    const forged = await api("POST", "/exchange_openid", { matrixServer: openId.matrix_server_name, openIdToken: "forged-token" }, "");
    assert.equal(forged.status, 401);
    assert.equal(forged.json.errcode, "M_AS_BAD_OPENID");

    const exchanged = await api<{ token: string; userId: string }>("POST", "/exchange_openid", { matrixServer: openId.matrix_server_name, openIdToken: openId.access_token }, "");
    assert.equal(exchanged.status, 200, JSON.stringify(exchanged.json));
    assert.equal(exchanged.json.userId, mod.userId);
    const session = exchanged.json.token;

    const listed = await links(mappedRoom, session);
    assert.equal(listed.status, 200);
    assert.equal(listed.json.length, 1);
    // A session cannot speak for another user.
    const other = await api("POST", "/unlink", { remote_room_server: server, remote_room_channel: "#mapped", matrix_room_id: mappedRoom, user_id: pleb.userId }, session);
    assert.equal(other.status, 403);
    assert.equal(other.json.errcode, "M_FORBIDDEN");
  });

  test("querylink lists the channel's operators as the bot sees them", async () => {
    const query = await api<{ operators: string[] }>("POST", "/querylink", { remote_room_server: server, remote_room_channel: "#plumbed" });
    assert.equal(query.status, 200, JSON.stringify(query.json));
    assert.deepEqual(query.json.operators, ["chief"]);
  });

  test("POST link with the shared secret: the op approves by PM, the link is listed, messages flow both ways", async () => {
    plumbedRoom = await mod.createRoom({ name: "API plumbed room" });
    await pleb.joinRoom(plumbedRoom);
    const request = { remote_room_server: server, remote_room_channel: "#plumbed", matrix_room_id: plumbedRoom, op_nick: "chief", user_id: mod.userId };
    const notOp = await api("POST", "/link", { ...request, op_nick: "dave" });
    assert.equal(notOp.status, 400);
    assert.equal(notOp.json.errcode, "IRC_BAD_OPERATOR_TARGET");

    const from = chief.lines.length;
    const asked = await api("POST", "/link", request);
    assert.equal(asked.status, 200, JSON.stringify(asked.json));
    assert.equal(asked.json.status, "pending");
    assert.equal(asked.json.op_nick, "chief");
    const again = await api("POST", "/link", request);
    assert.equal(again.status, 409);
    assert.equal(again.json.errcode, "IRC_EXISTING_REQUEST");

    const pm = await waitFor("chief to get the bot's PM", () => chief.lines.slice(from).find((l) => l.nick === "BridgeBot" && l.target === "chief" && /#plumbed/.test(l.text)), 30_000);
    assert.ok(pm.text.includes(mod.userId), pm.text);
    chief.say("BridgeBot", "yes");
    const listed = await waitFor(
      "the link in listlinks",
      async () => (await links(plumbedRoom)).json.find((l) => l.remote_room_channel === "#plumbed"),
      30_000,
      250,
    );
    assert.deepEqual(listed, { matrix_room_id: plumbedRoom, remote_room_channel: "#plumbed", remote_room_server: server, network_id: NETWORK, origin: "plumbed" });
    assert.equal((await api("GET", "/limits")).json.count, 2);
    const existing = await api("POST", "/link", request);
    assert.equal(existing.status, 409);
    assert.equal(existing.json.errcode, "IRC_EXISTING_MAPPING");

    await mod.sendText(plumbedRoom, "hello IRC, from a room linked through the API");
    await chief.waitForLine((l) => l.target === "#plumbed" && l.text === "hello IRC, from a room linked through the API", "mod's message in #plumbed", 30_000);
    chief.say("#plumbed", "hello Matrix, from chief");
    const seen = await mod.waitForMessage(plumbedRoom, (e) => e.content.body === "hello Matrix, from chief", 30_000);
    assert.equal(seen.sender, stack.ghostId("chief"));
  });

  test("unlink: 403 for a member without power; 200 for the moderator, and the bot leaves the room", async () => {
    const body = { remote_room_server: server, remote_room_channel: "#plumbed", matrix_room_id: plumbedRoom };
    const denied = await api("POST", "/unlink", { ...body, user_id: pleb.userId });
    assert.equal(denied.status, 403);
    assert.equal(denied.json.errcode, "IRC_NOT_ENOUGH_POWER");
    assert.equal((await links(plumbedRoom)).json.length, 1, "still linked");

    const from = chief.raw.length;
    const done = await api("POST", "/unlink", { ...body, user_id: mod.userId });
    assert.equal(done.status, 200, JSON.stringify(done.json));
    assert.deepEqual(done.json, {});
    await mod.waitForEvent(plumbedRoom, (e) => e.type === "m.room.member" && e.state_key === botId && e.content.membership === "leave", "the bot leaving the room", 30_000);
    assert.deepEqual((await links(plumbedRoom)).json, []);
    await waitFor("BridgeBot to part #plumbed", () => chief.raw.slice(from).find((l) => /:BridgeBot!\S+ PART #plumbed/i.test(l)), 30_000);
  });
});
