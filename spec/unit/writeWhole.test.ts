import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { writeWhole } from "../../src/store/writeWhole.js";

test("writeWhole appends every byte of the text, multi-byte characters and empty writes included", () => {
  const dir = mkdtempSync(join(tmpdir(), "write-whole-"));
  try {
    const file = join(dir, "log");
    const fd = openSync(file, "w");
    const lines = ['["!room:hs","$ev","net","m1",1]\n', "", "caf\u00e9 \u20ac \u{1F600}\n", `${"x".repeat(200_000)}\n`];
    for (const text of lines) writeWhole(fd, text);
    closeSync(fd);
    assert.equal(readFileSync(file, "utf8"), lines.join(""));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("writeWhole throws what the write throws", () => {
  assert.throws(() => writeWhole(987_654, "x\n"), { code: "EBADF" });
});
