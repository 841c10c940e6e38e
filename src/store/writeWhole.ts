import { writeSync } from "node:fs";

/**
 * Writes all of `text` (UTF-8) at the file's position through `fd`: the journal's and the
 * message links' appends, a few per relayed message. The string goes to writeSync as it is
 * (Node encodes it natively, without a Buffer made for it in JavaScript); a short write, rare
 * on a regular file, is continued from the bytes. An error is thrown to the caller.
 */
export function writeWhole(fd: number, text: string): void {
  const written = writeSync(fd, text, null, "utf8");
  if (written >= Buffer.byteLength(text, "utf8")) return;
  const bytes = Buffer.from(text, "utf8");
  let offset = written;
  while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
}
