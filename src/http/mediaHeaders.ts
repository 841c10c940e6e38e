/**
 * The headers a media link is served with. Whatever a Matrix user uploaded is served from the
 * bridge's origin, so nothing it declares is trusted: only an allow-list of types passes
 * (anything else is application/octet-stream), only images, audio and video are shown inline,
 * the page is sandboxed (no script, no same-origin) and browsers may not sniff another type.
 */

/** Types passed through as they are; SVG, HTML and XML (script carriers) are deliberately absent. */
const SAFE_TYPES = new Set([
  "image/png",
  "image/jpeg",
  "image/gif",
  "image/webp",
  "image/avif",
  "image/apng",
  "image/bmp",
  "audio/mpeg",
  "audio/mp4",
  "audio/aac",
  "audio/ogg",
  "audio/opus",
  "audio/wav",
  "audio/x-wav",
  "audio/webm",
  "audio/flac",
  "video/mp4",
  "video/webm",
  "video/ogg",
  "video/quicktime",
  "text/plain",
  "text/csv",
  "application/pdf",
  "application/json",
  "application/zip",
  "application/gzip",
]);

/** The Content-Type to serve for what the homeserver said the file is. */
export function safeContentType(declared: string | null | undefined): string {
  const type = (declared ?? "").split(";")[0].trim().toLowerCase();
  if (!SAFE_TYPES.has(type)) return "application/octet-stream";
  // Text is served as UTF-8 whatever it claims: a declared charset such as UTF-7 is an attack.
  return type.startsWith("text/") ? `${type}; charset=utf-8` : type;
}

/** `inline` only for images, audio and video; `attachment` otherwise. RFC 6266 with an ASCII fallback. */
export function contentDisposition(contentType: string, filename: string): string {
  const inline = /^(image|audio|video)\//.test(contentType);
  // eslint-disable-next-line no-control-regex
  const ascii = filename.replace(/[^\x20-\x7e]|["\\%]/g, "_");
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${inline ? "inline" : "attachment"}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/** The headers of a served file (length when the homeserver said it). */
export function mediaHeaders(declaredType: string | null, filename: string, length: number | null): Record<string, string> {
  const type = safeContentType(declaredType);
  return {
    "Content-Type": type,
    "Content-Disposition": contentDisposition(type, filename),
    "Content-Security-Policy": "sandbox",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    // A redaction ends a link: caches may keep it only briefly, and only the client's own.
    "Cache-Control": "private, max-age=300",
    ...(length !== null ? { "Content-Length": String(length) } : {}),
  };
}

/** The headers of an error answer (also sandboxed and not sniffable). */
export const ERROR_HEADERS: Record<string, string> = {
  "Content-Type": "text/plain; charset=utf-8",
  "Content-Security-Policy": "sandbox",
  "X-Content-Type-Options": "nosniff",
  "Cache-Control": "no-store",
};
