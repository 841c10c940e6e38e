import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { mentionsIn } from "../../src/format/mentions.js";

describe("mentionsIn (the only formatted_body built from IRC text)", () => {
  const alice = (nick: string) => (nick === "alice" ? "@alice:example.org" : null);

  test("escapes every piece of IRC text around the pills", () => {
    const body = `<b>hi</b> alice: <script>alert("x")</script> & <a href='javascript:1'>y</a>`;
    const content = mentionsIn(body, alice);
    const html = String(content.formatted_body);
    assert.equal(
      html,
      `&lt;b&gt;hi&lt;/b&gt; <a href="https://matrix.to/#/%40alice%3Aexample.org">alice</a>: &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;a href='javascript:1'&gt;y&lt;/a&gt;`,
    );
    assert.deepEqual(content["m.mentions"], { user_ids: ["@alice:example.org"] });
  });

  test("no mention, no formatted_body: the plain body is all there is", () => {
    assert.deepEqual(mentionsIn("<b>x</b><script>", alice), {});
  });
});
