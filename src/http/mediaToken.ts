/**
 * Signed media links: `<publicUrl><payload>.<signature>/<file name>`. The payload names the
 * media and the event it came in (so a redaction can end the link, and nothing is stored per
 * link); the signature is HMAC-SHA256 over the mxc URI, event ID, room ID, file name and
 * optional expiry, checked with timingSafeEqual before anything else happens. The file name
 * stays the last path segment, so a browser saves the file under its own name.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { ConfigError } from "../config/load.js";
import { parseMxc } from "../format/media.js";

export { parseMxc };

/** What a link points at, all of it signed. */
export interface MediaRef {
  mxc: string;
  eventId: string;
  roomId: string;
  filename: string;
  /**
   * For an edit's link: the event it edits (the sender chose it, so a link of an edit is dead
   * when either is redacted; signing only the original let an edit of any event outlive both).
   */
  originalEventId?: string;
  /** Unix seconds after which the link is dead; null: never. */
  expiresAt: number | null;
}

export type Verified = { ok: true; ref: MediaRef } | { ok: false; reason: "bad_link" | "expired" };

const MIN_KEY_BYTES = 32;
const MAX_FILENAME = 100;
const TOKEN = /^([A-Za-z0-9_-]{1,2000})\.([A-Za-z0-9_-]{43})$/;
/** 1: links without an original event (still made, and those given out still verify); 2: with one. */
const VERSION = 1;
const VERSION_EDIT = 2;

/**
 * A file name fit for a link's last segment and a Content-Disposition: no path, no control
 * characters, at most MAX_FILENAME characters (the extension kept); "file" when nothing is left.
 */
export function linkFileName(name: unknown): string {
  const base = (typeof name === "string" ? name : "").split(/[/\\]/).pop()!;
  // eslint-disable-next-line no-control-regex
  const clean = [...base.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, "").replace(/\s+/g, " ").trim()];
  if (clean.length === 0 || clean.join("") === "." || clean.join("") === "..") return "file";
  if (clean.length <= MAX_FILENAME) return clean.join("");
  const text = clean.join("");
  const ext = /\.[A-Za-z0-9]{1,10}$/.exec(text)?.[0] ?? "";
  return [...text].slice(0, MAX_FILENAME - ext.length).join("").trimEnd() + ext;
}

/** Reads the signing key; makes one (random, mode 0600) when the file does not exist. */
export function loadSigningKey(path: string, configFile = "<config>"): Buffer {
  const problem = (text: string) => new ConfigError(configFile, [`media.signingKeyFile: ${text}`]);
  let key: Buffer;
  try {
    key = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw problem(`cannot read ${path}: ${(err as Error).message}`);
    try {
      mkdirSync(dirname(path), { recursive: true });
      key = randomBytes(MIN_KEY_BYTES);
      writeFileSync(path, key, { mode: 0o600, flag: "wx" });
    } catch (e) {
      throw problem(`cannot create ${path}: ${(e as Error).message}`);
    }
  }
  // Whoever reads the key can sign links to any media the appservice can download.
  const mode = statSync(path).mode;
  if (process.platform !== "win32" && (mode & 0o077) !== 0) {
    throw problem(`${path} is readable or writable by others (mode ${(mode & 0o777).toString(8).padStart(3, "0")}); chmod 600 ${path}`);
  }
  if (key.length < MIN_KEY_BYTES) throw problem(`${path} holds ${key.length} bytes; expected at least ${MIN_KEY_BYTES} random bytes`);
  return key;
}

export class MediaSigner {
  private readonly base: string;
  /** The path links are served under (ends with "/"). */
  readonly basePath: string;

  constructor(
    private readonly key: Buffer,
    publicUrl: string,
    private readonly lifetimeSeconds: number | null = null,
    /** Told of every link made (the events it names: their redactions must end it). */
    private readonly onLink: (ref: Omit<MediaRef, "expiresAt">) => void = () => undefined,
  ) {
    this.base = publicUrl.endsWith("/") ? publicUrl : `${publicUrl}/`;
    this.basePath = new URL(this.base).pathname;
  }

  /** The public link to a file of an event (valid for the configured lifetime, if any). */
  link(ref: Omit<MediaRef, "expiresAt">, now = Date.now()): string {
    const expiresAt = this.lifetimeSeconds === null ? null : Math.floor(now / 1000) + this.lifetimeSeconds;
    const full: MediaRef = { ...ref, filename: linkFileName(ref.filename), expiresAt };
    const { server, mediaId } = parseMxc(full.mxc) ?? fail(`not an mxc URI: ${full.mxc}`);
    if (ref.originalEventId === undefined) delete full.originalEventId;
    const fields: (string | number)[] = full.originalEventId === undefined ? [VERSION, server, mediaId, full.eventId, full.roomId] : [VERSION_EDIT, server, mediaId, full.eventId, full.roomId, full.originalEventId];
    if (expiresAt !== null) fields.push(expiresAt);
    const payload = Buffer.from(JSON.stringify(fields)).toString("base64url");
    this.onLink(ref);
    return `${this.base}${payload}.${this.sign(full)}/${encodeURIComponent(full.filename)}`;
  }

  /**
   * The token and file name of a request path, or null when the path is not a media link: the
   * link's own path (`<basePath><token>/<name>`), or the same at the root, for a reverse proxy
   * that strips the sub-path.
   */
  parsePath(pathname: string): { token: string; filename: string } | null {
    const slash = pathname.lastIndexOf("/");
    const before = pathname.lastIndexOf("/", slash - 1);
    if (slash <= 0 || before < 0) return null;
    const prefix = pathname.slice(0, before + 1);
    const token = pathname.slice(before + 1, slash);
    if ((prefix !== this.basePath && prefix !== "/") || !TOKEN.test(token)) return null;
    try {
      return { token, filename: decodeURIComponent(pathname.slice(slash + 1)) };
    } catch {
      return null;
    }
  }

  /** Checks a token and file name; a forged or altered one is "bad_link", whatever was changed. */
  verify(token: string, filename: string, now = Date.now()): Verified {
    const m = TOKEN.exec(token);
    if (!m) return { ok: false, reason: "bad_link" };
    const ref = decodePayload(m[1], filename);
    if (!ref) return { ok: false, reason: "bad_link" };
    const given = Buffer.from(m[2]);
    const wanted = Buffer.from(this.sign(ref));
    if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) return { ok: false, reason: "bad_link" };
    if (ref.expiresAt !== null && now / 1000 > ref.expiresAt) return { ok: false, reason: "expired" };
    return { ok: true, ref };
  }

  private sign(ref: MediaRef): string {
    const input =
      ref.originalEventId === undefined
        ? JSON.stringify(["matrix-irc-bridge media link", VERSION, ref.mxc, ref.eventId, ref.roomId, ref.filename, ref.expiresAt])
        : JSON.stringify(["matrix-irc-bridge media link", VERSION_EDIT, ref.mxc, ref.eventId, ref.roomId, ref.originalEventId, ref.filename, ref.expiresAt]);
    return createHmac("sha256", this.key).update(input).digest("base64url");
  }
}

/** The payload as signed, or null. Base64 decoding is lenient, so only its canonical form counts. */
function decodePayload(encoded: string, filename: string): MediaRef | null {
  const bytes = Buffer.from(encoded, "base64url");
  if (bytes.toString("base64url") !== encoded) return null;
  let fields: unknown;
  try {
    fields = JSON.parse(bytes.toString("utf8"));
  } catch {
    return null;
  }
  if (!Array.isArray(fields)) return null;
  const edit = fields[0] === VERSION_EDIT;
  if ((fields[0] !== VERSION && !edit) || (fields.length !== 5 + Number(edit) && fields.length !== 6 + Number(edit))) return null;
  const [, server, mediaId, eventId, roomId] = fields as unknown[];
  const original = edit ? (fields[5] as unknown) : undefined;
  const expiresAt = (fields[edit ? 6 : 5] ?? null) as unknown;
  if (![server, mediaId, eventId, roomId].every((f) => typeof f === "string") || (edit && typeof original !== "string") || (expiresAt !== null && !Number.isInteger(expiresAt))) return null;
  const mxc = `mxc://${server as string}/${mediaId as string}`;
  if (!parseMxc(mxc)) return null;
  const ref: MediaRef = { mxc, eventId: eventId as string, roomId: roomId as string, filename, expiresAt: expiresAt as number | null };
  if (edit) ref.originalEventId = original as string;
  return ref;
}

function fail(message: string): never {
  throw new Error(message);
}
