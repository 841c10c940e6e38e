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
});
