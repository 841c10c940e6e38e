/**
 * Media from Matrix (issue 13), against a real Synapse and a real InspIRCd: a Matrix user
 * uploads a PNG and sends it; IRC sees one line with a link the bridge serves (signed, on a
 * sub-path, from the homeserver's authenticated media API); the link serves the same bytes
 * with safe headers, dies when the event is redacted, and a forged link is 404 without any
 * homeserver call. Encrypted media and a bridge without `media.publicUrl` get notices.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { deflateSync } from "node:zlib";
import { after, before, describe, test } from "node:test";
import type { IrcTestClient } from "../harness/ircClient.js";
import type { MatrixTestClient } from "../harness/matrixClient.js";
import { freePort } from "../harness/ports.js";
import { Stack } from "../harness/stack.js";
import { waitFor } from "../harness/wait.js";

/** A real (tiny) PNG: Synapse thumbnails images on upload, so the bytes must decode. */
function png(width: number, height: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf: Buffer) => {
    let c = 0xffffffff;
    for (const byte of buf) c = crcTable[(c ^ byte) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const out = Buffer.alloc(8 + data.length + 4);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc(body), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  // Noise, so the file is as large as its pixels (tens of KiB), not a few hundred bytes.
  const rows = Buffer.concat(Array.from({ length: height }, () => Buffer.concat([Buffer.from([0]), randomBytes(width * 3)])));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", header), chunk("IDAT", deflateSync(rows)), chunk("IEND", Buffer.alloc(0))]);
}

async function upload(user: MatrixTestClient, bytes: Buffer, filename: string, contentType: string): Promise<string> {
  const res = await fetch(`${user.baseUrl}/_matrix/media/v3/upload?filename=${encodeURIComponent(filename)}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${user.accessToken}`, "Content-Type": contentType },
    body: new Uint8Array(bytes),
    signal: AbortSignal.timeout(30_000),
  });
  const json = (await res.json()) as { content_uri?: string };
  if (!res.ok || !json.content_uri) throw new Error(`upload: ${res.status} ${JSON.stringify(json)}`);
  return json.content_uri;
}

const LINK = /(https?:\/\/\S+)$/;

describe("media from Matrix", { timeout: 300_000 }, () => {
  let stack: Stack;
  let alice: MatrixTestClient;
  let bob: IrcTestClient;
  let roomId: string;
  let mediaPort: number;
  const puppet = "alice[m]";
  const image = png(100, 80);

  /** The sum of a counter family on the bridge's /metrics (all label sets). */
  const metric = async (name: string): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${stack.bridgePort}/metrics`)).text();
    return text
      .split("\n")
      .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
      .reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
  };
  /** Sends a message and waits for alice's puppet's line on IRC that satisfies `match`. */
  const lineFor = async (content: Record<string, unknown>, match: (text: string) => boolean, type = "m.room.message") => {
    const seen = bob.lines.length;
    await alice.send(roomId, content, type);
    return bob.waitForLine((l) => l.nick === puppet && bob.lines.indexOf(l) >= seen && match(l.text), "alice's media line", 30_000);
  };

  before(async () => {
    stack = await Stack.start();
    alice = await stack.matrixUser("alice");
    roomId = await alice.createRoom({ name: "Media", preset: "public_chat" });
    stack.mappings = { "#media": { roomIds: [roomId] } };
    mediaPort = await freePort();
    // Its own port, behind a sub-path (as a reverse proxy that passes the path would serve it).
    stack.configOverrides = { media: { publicUrl: `http://127.0.0.1:${mediaPort}/irc-media/`, bindAddress: "127.0.0.1", port: mediaPort } };
    await stack.startBridge();
    bob = await stack.ircUser("bob", ["#media"]);
    await alice.sendText(roomId, "warming up");
    await bob.waitForLine((l) => l.nick === puppet && l.text === "warming up", "alice's first line", 30_000);
  });

  after(async () => {
    await stack?.stop();
  });

  let imageLink = "";
  let imageEvent = "";

  test("an image reaches IRC as one line with a link that serves the same bytes, with safe headers", async () => {
    const mxc = await upload(alice, image, "cat.png", "image/png");
    const seen = bob.lines.length;
    imageEvent = await alice.send(roomId, { msgtype: "m.image", body: "cat.png", url: mxc, info: { mimetype: "image/png", size: image.length, w: 100, h: 80 } });
    const line = await bob.waitForLine((l) => l.nick === puppet && bob.lines.indexOf(l) >= seen && l.text.startsWith("sent an image:"), "the image line", 30_000);
    assert.equal(line.kind, "action");
    assert.match(line.text, new RegExp(`^sent an image: cat\\.png \\(${Math.round(image.length / 1024)} KiB\\) http://127\\.0\\.0\\.1:${mediaPort}/irc-media/\\S+/cat\\.png$`));
    imageLink = LINK.exec(line.text)![1];
    // Exactly one line for the message.
    assert.equal(bob.lines.filter((l, i) => i >= seen && l.nick === puppet).length, 1);

    const res = await fetch(imageLink);
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), image);
    assert.equal(res.headers.get("content-type"), "image/png");
    assert.equal(res.headers.get("content-length"), String(image.length));
    assert.equal(res.headers.get("content-disposition"), `inline; filename="cat.png"; filename*=UTF-8''cat.png`);
    assert.equal(res.headers.get("content-security-policy"), "sandbox");
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");

    const head = await fetch(imageLink, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), String(image.length));
    assert.equal(head.headers.get("content-type"), "image/png");
  });

  test("a link with one character changed is 404, and the homeserver is not asked", async () => {
    const calls = await metric("bridge_media_homeserver_requests_total");
    assert.ok(calls >= 2, `the GET and HEAD above went to the homeserver (${calls})`);
    const url = new URL(imageLink);
    const segments = url.pathname.split("/");
    const token = segments[segments.length - 2];
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === "A" ? "B" : "A") + s.slice(i + 1);
    const forged = [
      flip(token, token.length - 3), // the signature
      flip(token, 2), // the signed part (which media, which event)
    ].map((t) => `${url.origin}${[...segments.slice(0, -2), t, segments[segments.length - 1]].join("/")}`);
    forged.push(imageLink.replace(/cat\.png$/, "cat.pnh")); // the file name is signed too
    for (const link of forged) {
      const res = await fetch(link);
      assert.equal(res.status, 404, link);
      assert.equal(await res.text().then((t) => t.includes("cat")), false);
    }
    assert.equal(await metric("bridge_media_homeserver_requests_total"), calls, "no homeserver call for a forged link");
  });

  test("a caption (MSC2530: filename differs from body) goes with the file name", async () => {
    const mxc = await upload(alice, image, "dog.png", "image/png");
    const line = await lineFor({ msgtype: "m.image", body: "my dog, asleep", filename: "dog.png", url: mxc, info: { mimetype: "image/png", size: 2048 } }, (t) => t.includes("asleep"));
    assert.match(line.text, /^sent an image: my dog, asleep \(dog\.png, 2 KiB\) http:\/\/\S+\/dog\.png$/);
  });

  test("a file of a dangerous type is served as an attachment of type application/octet-stream", async () => {
    const html = Buffer.from("<script>alert(1)</script>");
    const mxc = await upload(alice, html, "page.html", "text/html");
    const line = await lineFor({ msgtype: "m.file", body: "page.html", url: mxc, info: { mimetype: "text/html", size: html.length } }, (t) => t.startsWith("sent a file:"));
    assert.match(line.text, /^sent a file: page\.html \(25 B\) http:\/\/\S+\/page\.html$/);
    const res = await fetch(LINK.exec(line.text)![1]);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/octet-stream");
    assert.equal(res.headers.get("content-disposition"), `attachment; filename="page.html"; filename*=UTF-8''page.html`);
    assert.equal(res.headers.get("content-security-policy"), "sandbox");
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), html);
  });

  test("a message over the line limit reaches IRC as its first line and a link to the whole text", async () => {
    const body = ["first of six", "two", "three", "four", "five", "six"].join("\n");
    const seen = bob.lines.length;
    const line = await lineFor({ msgtype: "m.text", body }, (t) => t.startsWith("first of six"));
    assert.match(line.text, new RegExp(`^first of six \\(full message at http://127\\.0\\.0\\.1:${mediaPort}/irc-media/\\S+/message\\.txt\\)$`));
    const res = await fetch(/\(full message at (\S+)\)$/.exec(line.text)![1]);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/plain; charset=utf-8");
    assert.equal(await res.text(), `${body}\n`);
    assert.deepEqual(bob.lines.slice(seen).filter((l) => l.nick === puppet).map((l) => l.text), [line.text]);
  });

  test("a sticker reaches IRC as a line with a link", async () => {
    const mxc = await upload(alice, image, "wave.png", "image/png");
    const line = await lineFor({ body: "waving hand", url: mxc, info: { mimetype: "image/png", size: image.length } }, (t) => t.startsWith("sent a sticker:"), "m.sticker");
    assert.match(line.text, /^sent a sticker: waving hand \(\d+ KiB\) http:\/\/\S+$/);
    assert.equal((await fetch(LINK.exec(line.text)![1])).status, 200);
  });

  test("after the event is redacted, its link is 404", async () => {
    assert.equal((await fetch(imageLink)).status, 200);
    await alice.request("PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/redact/${encodeURIComponent(imageEvent)}/r${Date.now()}`, { reason: "oops" });
    await waitFor("the redacted image's link to be 404", async () => (await fetch(imageLink)).status === 404, 30_000, 200);
  });

  test("encrypted media is refused with a notice", async () => {
    await alice.send(roomId, {
      msgtype: "m.file",
      body: "secret.pdf",
      file: { url: "mxc://localhost/abc", key: { kty: "oct", alg: "A256CTR", k: "x", key_ops: ["encrypt", "decrypt"], ext: true }, iv: "x", hashes: { sha256: "x" }, v: "v2" },
    });
    const notice = await alice.waitForMessage(roomId, (e) => e.content.msgtype === "m.notice" && String(e.content.body).includes("encrypted"), 30_000);
    assert.match(String(notice.content.body), /end-to-end encrypt/);
    assert.equal(bob.lines.some((l) => l.text.includes("secret.pdf")), false);
  });

  test("the link survives a restart, and the redacted one stays dead", async () => {
    const mxc = await upload(alice, image, "kept.png", "image/png");
    const line = await lineFor({ msgtype: "m.image", body: "kept.png", url: mxc, info: { mimetype: "image/png", size: image.length } }, (t) => t.includes("kept.png"));
    const kept = LINK.exec(line.text)![1];
    await stack.bridge.stop();
    await stack.bridge.start();
    assert.equal((await fetch(kept)).status, 200);
    assert.equal((await fetch(imageLink)).status, 404);
  });

  test("served on the appservice port at its root path too", async () => {
    await stack.bridge.stop();
    stack.configOverrides = { media: { publicUrl: `http://127.0.0.1:${stack.bridgePort}` } };
    await stack.startBridge();
    const mxc = await upload(alice, image, "root.png", "image/png");
    const line = await lineFor({ msgtype: "m.image", body: "root.png", url: mxc, info: { mimetype: "image/png", size: image.length } }, (t) => t.includes("root.png"));
    const link = LINK.exec(line.text)![1];
    assert.match(link, new RegExp(`^http://127\\.0\\.0\\.1:${stack.bridgePort}/[^/]+/root\\.png$`));
    const res = await fetch(link);
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), image);
  });

  test("without media.publicUrl, the sender is told what the operator must set", async () => {
    await stack.bridge.stop();
    stack.configOverrides = {};
    await stack.startBridge();
    const mxc = await upload(alice, image, "lost.png", "image/png");
    await alice.send(roomId, { msgtype: "m.image", body: "lost.png", url: mxc, info: { mimetype: "image/png", size: image.length } });
    const notice = await alice.waitForMessage(roomId, (e) => e.content.msgtype === "m.notice" && String(e.content.body).includes("media.publicUrl"), 30_000);
    assert.match(String(notice.content.body), /not bridged to IRC/);
  });
});
