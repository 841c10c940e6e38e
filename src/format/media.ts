/**
 * What a Matrix file (m.image, m.file, m.video, m.audio, a sticker) says on IRC: one line
 * from the sender's puppet, `sent an image: cat.png (120 KiB) <link>`, or with its caption
 * (MSC2530: a `filename` that differs from `body` makes the body a caption)
 * `sent an image: look! (cat.png, 120 KiB) <link>`. The link comes from the caller.
 */
import { toIrcLines } from "./lines.js";
import { stripReplyFallback } from "./replies.js";

/** The media msgtypes, with how IRC is told about each (stickers are an event type, not a msgtype). */
const WHAT: Record<string, [one: string, many: string]> = {
  "m.image": ["an image", "images"],
  "m.file": ["a file", "files"],
  "m.video": ["a video", "videos"],
  "m.audio": ["an audio file", "audio files"],
  "m.sticker": ["a sticker", "stickers"],
};

/** mxc://server/mediaId, strictly: both parts go into a homeserver URL path. */
const MXC = /^mxc:\/\/([A-Za-z0-9.:[\]-]{1,255})\/([A-Za-z0-9_-]{1,255})$/;

export function parseMxc(uri: unknown): { server: string; mediaId: string } | null {
  const m = typeof uri === "string" ? MXC.exec(uri) : null;
  return m ? { server: m[1], mediaId: m[2] } : null;
}

/** The kind of media an event carries ("m.image", ..., "m.sticker"), or null for anything else. */
export function mediaKindOf(eventType: unknown, msgtype: unknown): string | null {
  if (eventType === "m.sticker") return "m.sticker";
  return typeof msgtype === "string" && msgtype !== "m.sticker" && msgtype in WHAT ? msgtype : null;
}

/** "an image", "images" (plural for notices about the kind). */
export function mediaNoun(kind: string, plural = false): string {
  const words = WHAT[kind] ?? ["a file", "files"];
  return plural ? words[1] : words[0];
}

/** 512 B, 120 KiB, 4.8 MiB, 12 MiB, 1.5 GiB. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const shown = unit === 0 || value >= 10 ? Math.round(value).toString() : value.toFixed(1).replace(/\.0$/, "");
  return `${shown} ${units[unit]}`;
}

export interface MediaFacts {
  /** The file's name (for the line and the link). */
  filename: string;
  /** The caption, one line; null when there is none. */
  caption: string | null;
  size: number | null;
}

/** The name, caption and size of a media content. Stickers: the body describes the sticker. */
export function mediaFacts(kind: string, content: Record<string, unknown>): MediaFacts {
  const body = typeof content.body === "string" ? content.body : "";
  const filename = typeof content.filename === "string" && content.filename.trim() !== "" ? content.filename : body;
  const captionText = kind !== "m.sticker" && filename !== body ? oneLine(stripReplyFallback(body)) : "";
  const info = (content.info ?? {}) as Record<string, unknown>;
  const size = typeof info.size === "number" && Number.isSafeInteger(info.size) && info.size >= 0 ? info.size : null;
  return { filename: oneLine(filename) || "file", caption: captionText || null, size };
}

/** The IRC line for a file at `link`. */
export function mediaLine(kind: string, facts: MediaFacts, link: string, voice = false): string {
  const noun = voice ? "a voice message" : mediaNoun(kind);
  const size = facts.size === null ? null : formatSize(facts.size);
  const described = facts.caption
    ? `${facts.caption} (${facts.filename}${size ? `, ${size}` : ""})`
    : `${facts.filename}${size ? ` (${size})` : ""}`;
  return `sent ${noun}: ${described} ${link}`;
}

function oneLine(text: string): string {
  return toIrcLines(text).map((l) => l.trim()).join(" ");
}
