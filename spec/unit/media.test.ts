/** Media links (issue 13): signing and parsing, the headers files are served with, and the IRC line. */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdtempSync, statSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { contentDisposition, mediaHeaders, safeContentType } from "../../src/http/mediaHeaders.js";
import { linkFileName, loadSigningKey, MediaSigner } from "../../src/http/mediaToken.js";
import { formatSize } from "../../src/format/media.js";
import { ircMessageOf } from "../../src/format/msgtypes.js";
import { MediaRedactions, redactedEventOf } from "../../src/bridge/MediaRedactions.js";
import { MediaLinkPolicy } from "../../src/format/longMessages.js";
import { parseConfig } from "../../src/config/load.js";

const KEY = Buffer.alloc(32, 7);
const REF = { mxc: "mxc://example.org/AbCdEf123", eventId: "$ev_1:example.org", roomId: "!room:example.org", filename: "cat.png" };

/** The token and name of a link, as the server would see its path. */
function parts(signer: MediaSigner, link: string) {
  return signer.parsePath(new URL(link).pathname)!;
}

describe("media link signing", () => {
  test("a link keeps the file name, lives under the public URL's sub-path and verifies", () => {
    const signer = new MediaSigner(KEY, "https://example.org/irc-media");
    const link = signer.link(REF);
    assert.match(link, /^https:\/\/example\.org\/irc-media\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}\/cat\.png$/);
    const { token, filename } = parts(signer, link);
    assert.deepEqual(signer.verify(token, filename), { ok: true, ref: { ...REF, expiresAt: null } });
  });

  test("any changed character, another key, or another file name fails", () => {
    const signer = new MediaSigner(KEY, "https://example.org/m/");
    const { token, filename } = parts(signer, signer.link(REF));
    for (let i = 0; i < token.length; i++) {
      if (token[i] === ".") continue;
      const changed = token.slice(0, i) + (token[i] === "A" ? "B" : "A") + token.slice(i + 1);
      assert.deepEqual(signer.verify(changed, filename), { ok: false, reason: "bad_link" }, `character ${i}`);
    }
    // Base64 decoding ignores a last character's spare bits: only the exact token counts
    // (payloads of each length modulo 3, so some have spare bits).
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (const eventId of ["$a", "$aa", "$aaa"]) {
      const [payload, signature] = parts(signer, signer.link({ ...REF, eventId })).token.split(".");
      for (const c of alphabet) {
        if (c !== payload[payload.length - 1]) assert.equal(signer.verify(`${payload.slice(0, -1)}${c}.${signature}`, filename).ok, false, `${eventId}: last character ${c}`);
        if (c !== signature[42]) assert.equal(signer.verify(`${payload}.${signature.slice(0, -1)}${c}`, filename).ok, false, `${eventId}: signature's last ${c}`);
      }
    }
    assert.equal(signer.verify(token, "cat.jpg").ok, false);
    assert.equal(new MediaSigner(Buffer.alloc(32, 8), "https://example.org/m/").verify(token, filename).ok, false);
    assert.equal(signer.verify("garbage", filename).ok, false);
    assert.equal(signer.verify(`${Buffer.from('[1,"a","b","$e","!r"]').toString("base64url")}.${"A".repeat(43)}`, filename).ok, false);
  });

  test("an edit's link signs both event IDs; links given out before (version 1) still verify", () => {
    const signer = new MediaSigner(KEY, "https://example.org/m/");
    const edit = parts(signer, signer.link({ ...REF, originalEventId: "$orig" }));
    assert.deepEqual(signer.verify(edit.token, edit.filename), { ok: true, ref: { ...REF, originalEventId: "$orig", expiresAt: null } });
    // Swapping in another original (or dropping it) breaks the signature.
    const [payload, signature] = edit.token.split(".");
    const fields = JSON.parse(Buffer.from(payload, "base64url").toString()) as unknown[];
    for (const changed of [[...fields.slice(0, 5), "$never-redacted"], [1, ...fields.slice(1, 5)]]) {
      assert.equal(signer.verify(`${Buffer.from(JSON.stringify(changed)).toString("base64url")}.${signature}`, edit.filename).ok, false);
    }
    // A version-1 link as the bridge made them before: [1, server, id, event, room] signed without an original.
    const legacyPayload = Buffer.from(JSON.stringify([1, "example.org", "AbCdEf123", REF.eventId, REF.roomId])).toString("base64url");
    const legacySig = createHmac("sha256", KEY).update(JSON.stringify(["matrix-irc-bridge media link", 1, REF.mxc, REF.eventId, REF.roomId, "cat.png", null])).digest("base64url");
    assert.deepEqual(signer.verify(`${legacyPayload}.${legacySig}`, "cat.png"), { ok: true, ref: { ...REF, expiresAt: null } });
  });

  test("links never expire unless a lifetime is set; then they do", () => {
    const now = Date.UTC(2026, 0, 1);
    const forever = new MediaSigner(KEY, "https://example.org/");
    const a = parts(forever, forever.link(REF, now));
    assert.equal(forever.verify(a.token, a.filename, now + 10 * 365 * 86400_000).ok, true);
    const hour = new MediaSigner(KEY, "https://example.org/", 3600);
    const b = parts(hour, hour.link(REF, now));
    assert.equal(hour.verify(b.token, b.filename, now + 3599_000).ok, true);
    assert.deepEqual(hour.verify(b.token, b.filename, now + 3601_000), { ok: false, reason: "expired" });
  });

  test("paths: the sub-path or the root (a proxy that strips it); nothing else", () => {
    const signer = new MediaSigner(KEY, "https://example.org/irc-media/");
    const { token } = parts(signer, signer.link(REF));
    assert.deepEqual(signer.parsePath(`/irc-media/${token}/a%20b.png`), { token, filename: "a b.png" });
    assert.deepEqual(signer.parsePath(`/${token}/x`), { token, filename: "x" });
    assert.equal(signer.parsePath(`/other/${token}/x`), null);
    assert.equal(signer.parsePath(`/irc-media/${token}/%E0%A4%A`), null);
    assert.equal(signer.parsePath("/_matrix/app/v1/transactions/1"), null);
    assert.equal(signer.parsePath("/metrics"), null);
  });

  test("file names in links: no path, no control characters, bounded, never empty", () => {
    assert.equal(linkFileName("../../etc/passwd"), "passwd");
    assert.equal(linkFileName("a\u0000b\r\nc.png"), "abc.png");
    assert.equal(linkFileName(""), "file");
    assert.equal(linkFileName(".."), "file");
    const long = linkFileName(`${"x".repeat(300)}.jpeg`);
    assert.equal(long.length, 100);
    assert.ok(long.endsWith(".jpeg"));
    // A non-ASCII name round-trips through the link.
    const signer = new MediaSigner(KEY, "https://example.org/");
    const { token, filename } = parts(signer, signer.link({ ...REF, filename: "chat noir ☕.png" }));
    assert.equal(filename, "chat noir ☕.png");
    assert.equal(signer.verify(token, filename).ok, true);
  });

  test("the key file is made with mode 0600 when missing, and refused when others may read it", () => {
    const dir = mkdtempSync(join(tmpdir(), "media-key-"));
    const path = join(dir, "sub", "media.key");
    const key = loadSigningKey(path);
    assert.equal(key.length, 32);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(loadSigningKey(path), key);
    const open = join(dir, "open.key");
    writeFileSync(open, Buffer.alloc(32, 1));
    chmodSync(open, 0o644);
    assert.throws(() => loadSigningKey(open), /media\.signingKeyFile: .*chmod 600/);
    const short = join(dir, "short.key");
    writeFileSync(short, "tiny", { mode: 0o600 });
    assert.throws(() => loadSigningKey(short), /media\.signingKeyFile: .*4 bytes/);
  });
});

describe("media headers", () => {
  test("only an allow-list of types passes; text is UTF-8; the rest is application/octet-stream", () => {
    assert.equal(safeContentType("image/png"), "image/png");
    assert.equal(safeContentType("IMAGE/JPEG; foo=bar"), "image/jpeg");
    assert.equal(safeContentType("text/plain; charset=utf-7"), "text/plain; charset=utf-8");
    for (const bad of ["text/html", "image/svg+xml", "application/xhtml+xml", "text/xml", "application/javascript", "", null, "image/png\r\nX: y"]) {
      assert.equal(safeContentType(bad), "application/octet-stream", String(bad));
    }
  });

  test("inline only for images, audio and video; RFC 6266 file names", () => {
    assert.equal(contentDisposition("image/png", "cat.png"), `inline; filename="cat.png"; filename*=UTF-8''cat.png`);
    assert.equal(contentDisposition("video/mp4", "v.mp4").split(";")[0], "inline");
    assert.equal(contentDisposition("audio/ogg", "a.ogg").split(";")[0], "inline");
    assert.equal(contentDisposition("application/pdf", "a.pdf").split(";")[0], "attachment");
    assert.equal(contentDisposition("application/octet-stream", "x.html").split(";")[0], "attachment");
    assert.equal(contentDisposition("image/png", `é "quoted" 100%.png`), `inline; filename="_ _quoted_ 100_.png"; filename*=UTF-8''%C3%A9%20%22quoted%22%20100%25.png`);
    assert.equal(contentDisposition("image/png", "it's (1).png"), `inline; filename="it's (1).png"; filename*=UTF-8''it%27s%20%281%29.png`);
  });

  test("every served file is sandboxed and not sniffed; the length only when known", () => {
    const h = mediaHeaders("text/html", "x.html", 12);
    assert.equal(h["Content-Type"], "application/octet-stream");
    assert.equal(h["Content-Security-Policy"], "sandbox");
    assert.equal(h["X-Content-Type-Options"], "nosniff");
    assert.equal(h["Content-Length"], "12");
    assert.equal("Content-Length" in mediaHeaders("image/png", "a.png", null), false);
  });
});

describe("what a Matrix file says on IRC", () => {
  const linker = { link: (ref: { mxc: string; eventId: string; roomId: string; filename: string }) => `https://b/${ref.eventId}/${ref.filename}` };
  const event = (content: Record<string, unknown>, type = "m.room.message") => ({ type, event_id: "$e", room_id: "!r", content });

  test("one ACTION line with name, size and link; a caption when filename differs from body", () => {
    assert.deepEqual(ircMessageOf(event({ msgtype: "m.image", body: "cat.png", url: "mxc://hs/abc", info: { size: 122_880 } }), linker), {
      kind: "action",
      content: { msgtype: "m.emote", body: "sent an image: cat.png (120 KiB) https://b/$e/cat.png" },
    });
    const captioned = ircMessageOf(event({ msgtype: "m.video", body: "look\nat this", filename: "v.mp4", url: "mxc://hs/abc", info: { size: 5_000_000 } }), linker);
    assert.equal("content" in captioned && captioned.content.body, "sent a video: look at this (v.mp4, 4.8 MiB) https://b/$e/v.mp4");
    const sticker = ircMessageOf(event({ body: "waving", url: "mxc://hs/abc" }, "m.sticker"), linker);
    assert.equal("content" in sticker && sticker.content.body, "sent a sticker: waving https://b/$e/waving");
    const voice = ircMessageOf(event({ msgtype: "m.audio", body: "Voice message.ogg", url: "mxc://hs/abc", "org.matrix.msc3245.voice": {} }), linker);
    assert.equal("content" in voice && voice.content.body, "sent a voice message: Voice message.ogg https://b/$e/Voice message.ogg");
  });

  test("an edit of a file links the edit and the event it edits (redacting either ends the link)", () => {
    const edit = ircMessageOf(event({ msgtype: "m.image", body: "* new", url: "mxc://hs/abc", "m.new_content": { msgtype: "m.image", body: "new caption", filename: "a.png", url: "mxc://hs/abc" }, "m.relates_to": { rel_type: "m.replace", event_id: "$orig" } }), linker);
    assert.ok("content" in edit);
    // The edit's own ID: the sender chooses the edited ID, so it alone could name an event never redacted.
    assert.equal((edit.content["m.new_content"] as { body: string }).body, "sent an image: new caption (a.png) https://b/$e/a.png");
    const refs: unknown[] = [];
    ircMessageOf(event({ msgtype: "m.image", body: "* new", url: "mxc://hs/abc", "m.new_content": { msgtype: "m.image", body: "x", url: "mxc://hs/abc" }, "m.relates_to": { rel_type: "m.replace", event_id: "$orig" } }), { link: (ref) => (refs.push(ref), "l") });
    assert.deepEqual(refs, [{ mxc: "mxc://hs/abc", eventId: "$e", roomId: "!r", filename: "x", originalEventId: "$orig" }]);
  });

  test("refusals: encrypted files, no publicUrl (naming the key), bad mxc, unknown msgtypes", () => {
    assert.match((ircMessageOf(event({ msgtype: "m.file", body: "s.pdf", file: { url: "mxc://hs/x" } }), linker) as { refused: string }).refused, /end-to-end encrypted/);
    assert.match((ircMessageOf(event({ msgtype: "m.image", body: "a.png", url: "mxc://hs/x" }), null) as { refused: string }).refused, /^images are not bridged to IRC: .*media\.publicUrl/);
    assert.match((ircMessageOf(event({ msgtype: "m.image", body: "a.png", url: "mxc://hs/../x" }), linker) as { refused: string }).refused, /no valid mxc/);
    assert.match((ircMessageOf(event({ msgtype: "m.location", body: "geo" }), linker) as { refused: string }).refused, /m\.location are not bridged/);
    assert.deepEqual(ircMessageOf(event({ msgtype: "m.text", body: "hi" }), null), { kind: "privmsg", content: { msgtype: "m.text", body: "hi" } });
  });

  test("sizes and redactions", () => {
    assert.deepEqual([0, 1023, 1024, 122_880, 5 * 1024 * 1024, 20 * 1024 * 1024, 1.5 * 1024 ** 3].map(formatSize), ["0 B", "1023 B", "1 KiB", "120 KiB", "5 MiB", "20 MiB", "1.5 GiB"]);
    assert.equal(redactedEventOf({ type: "m.room.redaction", content: { redacts: "$a" } }), "$a");
    assert.equal(redactedEventOf({ type: "m.room.redaction", redacts: "$b", content: {} }), "$b");
    assert.equal(redactedEventOf({ type: "m.room.redaction", content: {} }), null);
  });
});

describe("long messages as a link to their text", () => {
  const linker = { link: (ref: { mxc: string; eventId: string; filename: string }) => `https://b/${ref.mxc}/${ref.eventId}/${ref.filename}` };

  test("over the limit: the first line and the link; the text uploaded without IRC codes", async () => {
    const uploaded: string[] = [];
    const policy = new MediaLinkPolicy(async (text) => (uploaded.push(text), "mxc://hs/t1"), linker);
    const lines = ["\x02one\x02", "two", "three", "four"];
    assert.deepEqual(await policy.shorten(lines, 3, { roomId: "!r", sender: "@a:hs", eventId: "$e" }), {
      lines: ["\x02one\x02 (full message at https://b/mxc://hs/t1/$e/message.txt)"],
      notice: null,
    });
    assert.deepEqual(uploaded, ["one\ntwo\nthree\nfour\n"]);
    assert.deepEqual(await policy.shorten(["a", "b"], 3, { roomId: "!r", sender: "@a:hs", eventId: "$e" }), { lines: ["a", "b"], notice: null });
  });

  test("an upload that fails or hangs: every line goes, and the sender is told it was long", async () => {
    const failures: string[] = [];
    const failing = new MediaLinkPolicy(async () => Promise.reject(new Error("M_TOO_LARGE")), linker, undefined, (e) => failures.push(e.message));
    const result = await failing.shorten(["1", "2", "3", "4"], 3, { roomId: "!r", sender: "@a:hs", eventId: "$e" });
    assert.deepEqual(result.lines, ["1", "2", "3", "4"]);
    assert.match(result.notice!, /4 lines long/);
    const hanging = new MediaLinkPolicy(() => new Promise(() => undefined), linker, undefined, (e) => failures.push(e.message), 50);
    assert.deepEqual((await hanging.shorten(["1", "2", "3", "4"], 3, { roomId: "!r", sender: "@a:hs", eventId: "$e" })).lines, ["1", "2", "3", "4"]);
    assert.deepEqual(failures, ["M_TOO_LARGE", "upload timed out"]);
  });
});

describe("media config", () => {
  const base = {
    homeserver: { url: "http://127.0.0.1:1", domain: "hs" },
    networks: { net: { name: "Net", address: "127.0.0.1", botNick: "bot", ghostUserTemplate: "irc_net_$NICK", aliasTemplate: "irc_net_$CHANNEL" } },
  };
  test("off by default; a malformed key is an error naming it", () => {
    const config = parseConfig(base);
    assert.equal(config.media.publicUrl, null);
    assert.equal(config.media.linkLifetimeSeconds, null);
    assert.throws(() => parseConfig({ ...base, media: { publicUrl: "ftp://example.org/m/" } }), /media\.publicUrl: expected the http\(s\) URL/);
    assert.throws(() => parseConfig({ ...base, media: { publicUrl: "https://example.org/m/?a=1" } }), /media\.publicUrl: expected a URL without a query/);
    assert.throws(() => parseConfig({ ...base, media: { port: 70000 } }), /media\.port:/);
    assert.throws(() => parseConfig({ ...base, media: { maxBytes: -1 } }), /media\.maxBytes:/);
    assert.throws(() => parseConfig({ ...base, media: { publicURL: "https://x/" } }), /media\.publicURL: unknown key/);
  });
});

describe("redacted media: only events the bridge linked", () => {
  /** The keyed records of a store, in memory. */
  const fakeStore = () => {
    const records = new Map<string, { kind: string; key: string; value: unknown; updatedAt: number }>();
    return {
      records,
      putRecord: async (kind: string, key: string, value: unknown) => void records.set(`${kind}/${key}`, { kind, key, value, updatedAt: 0 }),
      deleteRecord: async (kind: string, key: string) => records.delete(`${kind}/${key}`),
      listRecords: async (kind: string) => [...records.values()].filter((r) => r.kind === kind),
    };
  };
  const redaction = (redacts: string) => ({ type: "m.room.redaction", room_id: "!r", sender: "@u:x", content: { redacts } });
  const settle = () => new Promise((r) => setImmediate(r));

  test("a flood of redactions of other events keeps nothing; linked ones (an edit's two) are kept across a restart", async () => {
    const store = fakeStore();
    const redactions = new MediaRedactions(store as never);
    await redactions.load();
    const signer = new MediaSigner(KEY, "https://example.org/m/", null, (ref) => redactions.noteLinked(ref.roomId, [ref.eventId, ref.originalEventId]));
    signer.link(REF);
    signer.link({ ...REF, eventId: "$edit", originalEventId: "$orig" });
    for (let i = 0; i < 1_000; i++) await redactions.onRedaction(redaction(`$chatter${i}`));
    assert.equal([...store.records.keys()].filter((k) => k.startsWith("mediaRedacted/")).length, 0, "no record for events never linked");
    for (const id of [REF.eventId, "$orig"]) await redactions.onRedaction(redaction(id));
    await redactions.redact("!r", "$edit");
    assert.deepEqual([REF.eventId, "$edit", "$orig", "$chatter1"].map((e) => redactions.isRedacted(e)), [true, true, true, false]);
    await settle();
    const again = new MediaRedactions(store as never);
    await again.load();
    assert.equal(again.isRedacted("$orig"), true);
  });

  test("linked events are forgotten past the count cap or the links' lifetime", async () => {
    let now = 1_000_000;
    const store = fakeStore();
    const redactions = new MediaRedactions(store as never, 100, 60, 3, () => now);
    redactions.noteLinked("!r", ["$a", "$b", "$c", "$d"]);
    await settle();
    await redactions.onRedaction(redaction("$a"));
    assert.equal(redactions.isRedacted("$a"), false, "the oldest was forgotten past 3");
    now += 61_000;
    redactions.noteLinked("!r", ["$e"]);
    await settle();
    await redactions.onRedaction(redaction("$b"));
    assert.equal(redactions.isRedacted("$b"), false, "its links expired: no need to keep it");
    await redactions.onRedaction(redaction("$e"));
    assert.equal(redactions.isRedacted("$e"), true);
    assert.deepEqual([...store.records.keys()].filter((k) => k.startsWith("mediaLinked/")), ["mediaLinked/$e"]);
  });
});
