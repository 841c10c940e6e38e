import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { journalCopy } from "../../src/bridge/admin/AdminRooms.js";
import { parseCommand, rawCommandRefusal } from "../../src/bridge/admin/parse.js";
import { Permissions } from "../../src/bridge/Permissions.js";
import { ConfigError } from "../../src/config/load.js";
import { mentionsIn } from "../../src/format/mentions.js";
import { SecretBox } from "../../src/security/SecretBox.js";

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
    writeFileSync(keyA, randomBytes(32));
    writeFileSync(keyB, randomBytes(32));
    const box = SecretBox.fromKeyFile(keyA);
    const sealed = box.seal("hunter2");
    assert.ok(!sealed.includes("hunter2"));
    assert.notEqual(box.seal("hunter2"), sealed, "a fresh IV each time");
    assert.equal(box.open(sealed), "hunter2");
    assert.throws(() => SecretBox.fromKeyFile(keyB).open(sealed));
  });

  test("a missing or short key file is a config error naming the key", () => {
    writeFileSync(join(dir, "short.bin"), "tiny");
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
