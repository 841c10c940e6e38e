/** IRC formatting ↔ Matrix HTML, as tables (issue 14). */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { htmlToIrcLines } from "../../src/format/htmlToIrc.js";
import { ircContent, ircToHtml } from "../../src/format/ircContent.js";
import { IRC_COLOURS, nearestIrcColour, parseIrc, plainOf } from "../../src/format/ircFormat.js";

const html = (line: string) => ircToHtml(line).html;

describe("IRC → HTML", () => {
  const cases: [string, string, string][] = [
    ["bold", "\x02b\x02 x", "<strong>b</strong> x"],
    ["italic", "\x1di\x1d", "<em>i</em>"],
    ["underline", "\x1fu", "<u>u</u>"],
    ["strikethrough", "\x1es\x1e", "<del>s</del>"],
    ["monospace", "\x11m\x11", "<code>m</code>"],
    ["nested bold in italic", "\x1da\x02b\x02c", "<em>a</em><strong><em>b</em></strong><em>c</em>"],
    ["reset ends everything", "\x02\x1dab\x0fc", "<strong><em>ab</em></strong>c"],
    ["foreground colour", "\x034red", '<font data-mx-color="#ff0000">red</font>'],
    ["two-digit colour with background", "\x0302,08x", '<font data-mx-color="#00007f" data-mx-bg-color="#ffff00">x</font>'],
    ["colour reset by a bare \\x03", "\x034r\x03n", '<font data-mx-color="#ff0000">r</font>n'],
    ["99 is the default colour", "\x0399x", "x"],
    ["a third digit is text", "\x03041x", '<font data-mx-color="#ff0000">1x</font>'],
    ["hex colour", "\x04ff8800hex", '<font data-mx-color="#ff8800">hex</font>'],
    ["hex with background", "\x04FF8800,000000x", '<font data-mx-color="#ff8800" data-mx-bg-color="#000000">x</font>'],
    ["same foreground and background is a spoiler", "\x0301,01secret\x03 open", "<span data-mx-spoiler>secret</span> open"],
    ["reverse swaps colours", "\x0304,01\x16r", '<font data-mx-color="#000000" data-mx-bg-color="#ff0000">r</font>'],
    ["reverse without colours is plain", "\x16r", "r"],
    ["HTML in IRC text is escaped", "<script>&\"'", "&lt;script&gt;&amp;&quot;'"],
    ["escaped inside formatting", "\x02<b>\x02", "<strong>&lt;b&gt;</strong>"],
    ["a code alone makes no empty tag", "\x02\x02x", "x"],
  ];
  for (const [name, input, expected] of cases) test(name, () => assert.equal(html(input), expected));

  test("every colour 0–98 maps to its RGB, and 99 to none", () => {
    assert.equal(IRC_COLOURS.length, 99);
    for (let n = 0; n < 99; n++) {
      const code = String(n).padStart(2, "0");
      assert.deepEqual(parseIrc(`\x03${code}x`), [{ text: "x", style: { fg: IRC_COLOURS[n] } }], `colour ${n}`);
      assert.equal(IRC_COLOURS[nearestIrcColour(IRC_COLOURS[n])], IRC_COLOURS[n], `nearest of ${n}`);
    }
    assert.deepEqual(parseIrc("\x0399x"), [{ text: "x", style: {} }]);
  });

  test("formatting never leaks into the next line: each line starts plain", () => {
    assert.equal(html("\x02unclosed"), "<strong>unclosed</strong>");
    assert.equal(html("next"), "next");
  });

  test("content: plain body, HTML only when there is formatting, mentions composed with it", () => {
    assert.deepEqual(ircContent("m.text", "plain <text>"), { msgtype: "m.text", body: "plain <text>" });
    const alice = (nick: string) => (nick === "alice[m]" ? "@alice:hs" : null);
    assert.deepEqual(ircContent("m.notice", "\x02hi alice[m]\x02", alice), {
      msgtype: "m.notice",
      body: "hi alice[m]",
      format: "org.matrix.custom.html",
      formatted_body: '<strong>hi <a href="https://matrix.to/#/%40alice%3Ahs">alice[m]</a></strong>',
      "m.mentions": { user_ids: ["@alice:hs"] },
    });
    assert.equal(plainOf("\x0304,05a\x04ffffffb\x0fc"), "abc");
  });

  test("a line without formatting codes gets the content a full parse gives it (pills, escapes, mentions)", () => {
    const users: Record<string, string> = { "alice[m]": "@alice:hs", bob: "@irc_bob:hs", "x&y": "@never:hs" };
    const userIdOf = (nick: string) => users[nick] ?? null;
    // What ircContent built for every line before plain lines were taken apart: a full parse.
    const parsed = (text: string) => {
      const { html: formatted, userIds } = ircToHtml(text, userIdOf);
      const body = plainOf(text);
      const content: Record<string, unknown> = { msgtype: "m.text", body };
      const escaped = body.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
      if (formatted !== escaped) Object.assign(content, { format: "org.matrix.custom.html", formatted_body: formatted });
      if (userIds.size > 0) content["m.mentions"] = { user_ids: [...userIds] };
      return content;
    };
    const lines = ["", "hello", "plain <text> & \"quotes\"", "alice[m]: hi", "hi alice[m], bob & <bob>", "bob bob bob", "alice[m]bob", "x&y", "über alice[m] 🎉", "\x01ACTION-like\x01 bob", "tab\there"];
    for (const line of lines) assert.deepEqual(ircContent("m.text", line, userIdOf), parsed(line), JSON.stringify(line));
  });
});

describe("HTML → IRC", () => {
  const nickOf = (userId: string) => ({ "@dave:hs": "dave[m]", "@irc_net_bob:hs": "bob" })[userId] ?? null;
  const cases: [string, string, string[]][] = [
    ["plain text", "hello", ["hello"]],
    ["bold, italic, underline, strike, code", "<b>b</b> <em>i</em> <u>u</u> <del>s</del> <code>c</code>", ["\x02b\x02 \x1di\x1d \x1fu\x1f \x1es\x1e \x11c"]],
    ["nested tags close in order", "<strong>a<em>b</em>c</strong>d", ["\x02a\x1db\x1dc\x02d"]],
    ["a link with text", '<a href="https://example.org/">site</a>', ["site (https://example.org/)"]],
    ["a link whose text is the url", '<a href="https://example.org/">https://example.org/</a>', ["https://example.org/"]],
    ["a mailto link", '<a href="mailto:a@b.c">a@b.c</a>', ["a@b.c"]],
    ["a pill of a puppet", '<a href="https://matrix.to/#/@dave:hs">Dave Smith</a>: hi', ["dave[m]: hi"]],
    ["a pill of a ghost", '<a href="https://matrix.to/#/%40irc_net_bob%3Ahs">bob (IRC)</a>: hi', ["bob: hi"]],
    ["a pill of someone unknown keeps its text", '<a href="https://matrix.to/#/@zed:hs">Zed</a>', ["Zed"]],
    ["unordered list", "<ul><li>one</li><li>two</li></ul>", ["- one", "- two"]],
    ["ordered list with start", '<ol start="3"><li>c</li><li>d</li></ol>', ["3. c", "4. d"]],
    ["nested list", "<ul><li>a<ul><li>b</li></ul></li></ul>", ["- a", "  - b"]],
    ["blockquote", "<blockquote><p>quoted</p><p>more</p></blockquote><p>reply</p>", ["> quoted", "> more", "reply"]],
    ["code block keeps its lines and spaces", "<pre><code>if x:\n    y()\n</code></pre>", ["if x:", "    y()"]],
    ["heading is bold", "<h1>Title</h1>text", ["\x02Title", "text"]],
    ["br and paragraphs break lines", "<p>a<br>b</p><p>c</p>", ["a", "b", "c"]],
    ["colour to the nearest IRC colour", '<font data-mx-color="#fe0101">red</font> x', ["\x0304red\x03 x"]],
    ["spoiler is same-colour text", "<span data-mx-spoiler>secret</span>", ["\x0301,01secret"]],
    ["a digit after a colour stays text", '<font color="#ff0000">1</font>2', ["\x0304\x02\x021\x03\x02\x022"]],
    ["mx-reply is removed", "<mx-reply><blockquote>old</blockquote></mx-reply>new", ["new"]],
    ["entities decoded", "a &lt;b&gt; &amp; c", ["a <b> & c"]],
    ["unknown tags fall back to their text", "<marquee>moving</marquee> <table><tr><td>cell</td></tr></table>", ["moving", "cell"]],
    ["an image is its alt text", '<img src="mxc://x/y" alt="cat">', ["cat"]],
    ["broken markup is still text", "<b>unclosed <i>tags", ["\x02unclosed \x1dtags"]],
    ["Element's list with newlines between items", "<p>See</p>\n<ul>\n<li>one</li>\n<li><strong>two</strong></li>\n</ul>\n", ["See", "- one", "- \x02two"]],
  ];
  for (const [name, input, expected] of cases) test(name, () => assert.deepEqual(htmlToIrcLines(input, nickOf), expected));
});
