/** Ghost intents: prepared once per user ID and nick, taken without a promise afterwards, prepared again after a failure. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Bridge } from "matrix-appservice-bridge";
import type { BridgeConfig, NetworkConfig } from "../../src/config/schema.js";
import { Ghosts } from "../../src/matrix/Ghosts.js";
import type { DataStore } from "../../src/store/DataStore.js";

const network = { ghostUserTemplate: "irc_net_$NICK" } as NetworkConfig;
const config = { homeserver: { domain: "example.org" }, networks: { net: network } } as unknown as BridgeConfig;

function ghostsWith(options: { registerFailures?: number } = {}) {
  let failures = options.registerFailures ?? 0;
  const calls: string[] = [];
  const bridge = {
    getIntent: (userId: string) => ({
      userId,
      async ensureRegistered() {
        calls.push(`register ${userId}`);
        if (failures > 0) {
          failures -= 1;
          throw new Error("homeserver unreachable");
        }
      },
      async setDisplayName(name: string) {
        calls.push(`name ${userId} ${name}`);
      },
    }),
  } as unknown as Bridge;
  const store = { getGhost: async () => null, upsertGhost: async () => undefined } as unknown as DataStore;
  return { ghosts: new Ghosts(bridge, store, config), calls };
}

describe("ghost intents", () => {
  test("prepared once; afterwards preparedIntent gives the same intent without waiting", async () => {
    const { ghosts, calls } = ghostsWith();
    const userId = ghosts.userIdFor(network, "bob");
    assert.equal(ghosts.preparedIntent(userId, "bob"), undefined, "nothing is prepared before the first call");
    const [first, second] = await Promise.all([ghosts.intentFor("net", network, "bob"), ghosts.intentFor("net", network, "bob")]);
    assert.equal(first, second, "two callers during the preparation share it");
    assert.equal(ghosts.preparedIntent(userId, "bob"), first);
    assert.equal(await ghosts.intentFor("net", network, "bob"), first);
    assert.deepEqual(calls, [`register ${userId}`, `name ${userId} bob`], "registered and named once");
    assert.equal(ghosts.preparedIntent(userId, "Bob"), undefined, "another nick of the same user ID is prepared on its own (its display name)");
  });

  test("a failed preparation is not kept: the next call prepares the ghost again", async () => {
    const { ghosts, calls } = ghostsWith({ registerFailures: 1 });
    const userId = ghosts.userIdFor(network, "carol");
    await assert.rejects(ghosts.intentFor("net", network, "carol"), /homeserver unreachable/);
    assert.equal(ghosts.preparedIntent(userId, "carol"), undefined);
    const intent = await ghosts.intentFor("net", network, "carol");
    assert.equal(intent.userId, userId);
    assert.equal(ghosts.preparedIntent(userId, "carol"), intent);
    assert.deepEqual(calls, [`register ${userId}`, `register ${userId}`, `name ${userId} carol`]);
  });

  test("a nick the template cannot make a user ID of is a rejected promise, not a throw", async () => {
    const { ghosts } = ghostsWith();
    const broken = { ghostUserTemplate: null } as unknown as NetworkConfig;
    const result = ghosts.intentFor("net", broken, "dave");
    assert.ok(result instanceof Promise);
    await assert.rejects(result);
  });
});
