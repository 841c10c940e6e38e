import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { AdminRooms } from "../../src/bridge/admin/AdminRooms.js";
import { journalCopy } from "../../src/bridge/admin/secrets.js";
import { parseCommand, rawCommandRefusal } from "../../src/bridge/admin/parse.js";
import { Permissions } from "../../src/bridge/Permissions.js";
import { ConfigError, parseConfig } from "../../src/config/load.js";
import { mentionsIn } from "../../src/format/mentions.js";
import { SecretBox } from "../../src/security/SecretBox.js";
import type { DataStore } from "../../src/store/DataStore.js";

describe("admin commands", () => {
  test("the network argument is taken only when it names a network", () => {
    assert.deepEqual(parseCommand("!nick libera alice", ["libera", "oftc"]), { name: "nick", rest: "alice", networkId: "libera" });
    assert.deepEqual(parseCommand("  !NICK alice ", ["libera"]), { name: "nick", rest: "alice", networkId: null });
    assert.deepEqual(parseCommand("!help", ["libera"]), { name: "help", rest: "", networkId: null });
    assert.equal(parseCommand("hello", ["libera"]), null);
  });

  test("raw commands that would break the bridge, or smuggle lines, are refused", () => {
    const bridged = (c: string) => c.toLowerCase() === "#bridged";
    assert.equal(rawCommandRefusal("AWAY :brb", bridged), null);
    assert.equal(rawCommandRefusal("MODE alice +i", bridged), null);
    assert.equal(rawCommandRefusal("JOIN #other", bridged), null);
    assert.match(rawCommandRefusal("AWAY :a\r\nQUIT", bridged)!, /one line/);
    assert.match(rawCommandRefusal("quit :bye", bridged)!, /QUIT would break/);
    assert.match(rawCommandRefusal("NICK bob", bridged)!, /!nick/);
    assert.match(rawCommandRefusal("JOIN #other,#BRIDGED", bridged)!, /#BRIDGED is bridged/);
    assert.match(rawCommandRefusal("PRIVMSG #bridged :hi", bridged)!, /speak in its room/);
    assert.match(rawCommandRefusal("JOIN 0", bridged)!, /leave every channel/);
    assert.match(rawCommandRefusal("12 x", bridged)!, /not an IRC command word/);
  });

  test("a !storepass never reaches the journal with its password", () => {
    const event = { type: "m.room.message", content: { msgtype: "m.text", body: "!storepass libera s3cret" } };
    const copy = journalCopy(event);
    assert.ok(!JSON.stringify(copy).includes("s3cret"));
    const other = { type: "m.room.message", content: { msgtype: "m.text", body: "!nick bob" } };
    assert.equal(journalCopy(other), other);
  });

  test("an edit of !storepass, and a !join with a key, never reach the journal with their secret", () => {
    const edit = {
      type: "m.room.message",
      event_id: "$edit",
      content: {
        msgtype: "m.text",
        body: "* !storepass n3wpass",
        formatted_body: "* !storepass n3wpass",
        "m.new_content": { msgtype: "m.text", body: "!storepass n3wpass" },
        "m.relates_to": { rel_type: "m.replace", event_id: "$original" },
      },
    };
    const copy = journalCopy(edit);
    assert.ok(!JSON.stringify(copy).includes("n3wpass"), JSON.stringify(copy));
    assert.equal(copy.event_id, "$edit", "the copy keeps the event's ID, to redact it on replay");
    const join = { type: "m.room.message", content: { msgtype: "m.text", body: "!join #chan k3y" } };
    assert.ok(!JSON.stringify(journalCopy(join)).includes("k3y"));
    const joinEdit = { type: "m.room.message", content: { msgtype: "m.text", body: "* !join #chan k3y", "m.new_content": { msgtype: "m.text", body: "!JOIN #chan k3y" }, "m.relates_to": { rel_type: "m.replace", event_id: "$o" } } };
    assert.ok(!JSON.stringify(journalCopy(joinEdit)).includes("k3y"));
    const keyless = { type: "m.room.message", content: { msgtype: "m.text", body: "!join #chan" } };
    assert.equal(journalCopy(keyless), keyless, "a !join without a key is kept as it is");
    const named = { type: "m.room.message", content: { msgtype: "m.text", body: "!join libera #chan" } };
    assert.equal(journalCopy(named, ["libera"]), named, "a network named before the channel is not a key");
    assert.ok(!JSON.stringify(journalCopy({ ...named, content: { body: "!join libera #chan k3y" } }, ["libera"])).includes("k3y"));
  });
});

describe("permissions", () => {
  test("the most specific entry wins; no entry means none", () => {
    const p = new Permissions({ "*": "user", "evil.org": "none", "@boss:example.org": "admin", "@ok:evil.org": "user" });
    assert.equal(p.levelOf("@someone:example.org"), "user");
    assert.equal(p.levelOf("@x:evil.org"), "none");
    assert.equal(p.levelOf("@ok:evil.org"), "user");
    assert.ok(p.isAdmin("@boss:example.org"));
    assert.ok(!new Permissions({ "example.org": "user" }).mayUse("@a:other.org"));
  });
});

describe("secrets at rest", () => {
  const dir = mkdtempSync(join(tmpdir(), "secretbox-"));
  test("a sealed value opens with the same key only, and does not show the plaintext", () => {
    const keyA = join(dir, "a.bin");
    const keyB = join(dir, "b.bin");
    writeFileSync(keyA, randomBytes(32), { mode: 0o600 });
    writeFileSync(keyB, randomBytes(32), { mode: 0o600 });
    const box = SecretBox.fromKeyFile(keyA);
    const sealed = box.seal("hunter2");
    assert.ok(!sealed.includes("hunter2"));
    assert.notEqual(box.seal("hunter2"), sealed, "a fresh IV each time");
    assert.equal(box.open(sealed), "hunter2");
    assert.throws(() => SecretBox.fromKeyFile(keyB).open(sealed));
  });

  test("a key file that group or others may read or write is refused, saying chmod 600", () => {
    const key = join(dir, "open.bin");
    writeFileSync(key, randomBytes(32), { mode: 0o600 });
    for (const mode of [0o644, 0o640, 0o604, 0o620, 0o602]) {
      chmodSync(key, mode);
      assert.throws(
        () => SecretBox.fromKeyFile(key),
        (e: Error) => e instanceof ConfigError && e.message.includes(`credentials.keyFile: ${key}`) && /others/.test(e.message) && e.message.includes(`chmod 600 ${key}`),
        `mode ${mode.toString(8)} is refused`,
      );
    }
    for (const mode of [0o600, 0o400]) {
      chmodSync(key, mode);
      assert.ok(SecretBox.fromKeyFile(key), `mode ${mode.toString(8)} is accepted`);
    }
  });

  test("a missing or short key file is a config error naming the key", () => {
    writeFileSync(join(dir, "short.bin"), "tiny", { mode: 0o600 });
    assert.throws(() => SecretBox.fromKeyFile(join(dir, "short.bin")), (e: Error) => e instanceof ConfigError && /credentials\.keyFile: .*at least 32/.test(e.message));
    assert.throws(() => SecretBox.fromKeyFile(join(dir, "missing.bin")), (e: Error) => e instanceof ConfigError && /credentials\.keyFile: cannot read/.test(e.message));
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("mentions", () => {
  test("nicks of Matrix users become pills and m.mentions; HTML is escaped", () => {
    const users: Record<string, string> = { "alice[m]": "@alice:x.org" };
    const content = mentionsIn("hi alice[m] <b>", (n) => users[n] ?? null);
    assert.equal(content.formatted_body, 'hi <a href="https://matrix.to/#/%40alice%3Ax.org">alice[m]</a> &lt;b&gt;');
    assert.deepEqual(content["m.mentions"], { user_ids: ["@alice:x.org"] });
    assert.deepEqual(mentionsIn("nobody here", () => null), {});
  });
});

describe("admin room replay of a scrubbed journal copy", () => {
  test("the message (and the one an edit replaced) is still redacted, and the user asked to send it again", async () => {
    const config = parseConfig({
      homeserver: { url: "http://localhost:8008", domain: "localhost" },
      networks: { libera: { name: "Libera", address: "irc.example.org", botNick: "Bot", ghostUserTemplate: "irc_$NICK", aliasTemplate: "irc_$CHANNEL" } },
    });
    const redacted: string[] = [];
    const said: string[] = [];
    const bot = { matrixClient: { redactEvent: async (_room: string, id: string) => void redacted.push(id) }, sendMessage: async (_room: string, c: { body: string }) => void said.push(c.body) };
    const store = { getUsers: async () => [{ userId: "@a:localhost", adminRoomId: "!admin", features: {} }] } as unknown as DataStore;
    const admin = new AdminRooms(config, store, new Map(), new Permissions({ "*": "user" }), () => bot as never, {} as never);
    await admin.load();
    const base = { type: "m.room.message", room_id: "!admin", sender: "@a:localhost" };
    const edit = { ...base, event_id: "$edit", content: { msgtype: "m.text", body: "* !join #c k3y", "m.new_content": { msgtype: "m.text", body: "!join #c k3y" }, "m.relates_to": { rel_type: "m.replace", event_id: "$orig" } } };
    await admin.onMessage(journalCopy(edit));
    assert.deepEqual(redacted.sort(), ["$edit", "$orig"]);
    assert.match(said[0], /Your !join arrived while the bridge was restarting.*send it again/);
    // A copy journalled before edits were scrubbed (marker `true`) is still understood.
    await admin.onMessage({ ...base, event_id: "$old", content: { msgtype: "m.text", body: "!storepass", "net.matrix_irc_bridge.password_not_kept": true } });
    assert.ok(redacted.includes("$old"));
    assert.match(said[1], /Your !storepass arrived/);
  });
});

describe("!cmd refusals read the line as the writer sends it", () => {
  test("a leading colon or a status prefix does not get around them", () => {
    const bridged = (channel: string) => channel.toLowerCase() === "#bridged";
    for (const line of ["JOIN :#bridged", "PART :#bridged", "JOIN :0", "PRIVMSG @#bridged :hi", "NOTICE +#bridged :x", "JOIN #other,#bridged"]) {
      assert.ok(rawCommandRefusal(line, bridged), line);
    }
    assert.equal(rawCommandRefusal("AWAY :gone", bridged), null);
    assert.equal(rawCommandRefusal("JOIN #other", bridged), null);
  });
});
