import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { casefold } from "../../src/format/casemap.js";
import { isChannelName, stripIrcFormatting } from "../../src/format/ircText.js";
import { toIrcLines } from "../../src/format/lines.js";
import { fallbackNick, isValidNick, sanitiseNick } from "../../src/format/nick.js";
import { channelAllowed, matchesChannelPattern } from "../../src/format/patterns.js";
import { escapeNickForLocalpart, fillTemplate, ghostUserId, portalAlias, readTemplate, templateRegex, unescapeLocalpart } from "../../src/format/template.js";

describe("nicks", () => {
  test("valid nicks pass, invalid ones do not", () => {
    for (const nick of ["alice", "[m]bob", "a-b", "_x", "x^y{z}|"]) assert.ok(isValidNick(nick), nick);
    for (const nick of ["", "1abc", "-abc", "a b", "ä", "a".repeat(31)]) assert.ok(!isValidNick(nick), nick);
  });

  test("sanitising makes any string a legal nick", () => {
    assert.equal(sanitiseNick("alice[m]"), "alice[m]");
    assert.equal(sanitiseNick("Zoë Müller"), "ZoeMuller");
    assert.equal(sanitiseNick("42things"), "_42things");
    assert.equal(sanitiseNick("-dash"), "_-dash");
    assert.equal(sanitiseNick("日本"), "M");
    assert.equal(sanitiseNick("averyveryverylongnickname", 9), "averyvery");
    for (const input of ["a b\tc", "x\r\ny", "#chan", "@user:server"]) assert.ok(isValidNick(sanitiseNick(input)), input);
  });

  test("fallback nicks stay within the length limit and differ per attempt", () => {
    assert.equal(fallbackNick("alice", 1), "alice_");
    assert.equal(fallbackNick("alice", 2), "alice2");
    assert.equal(fallbackNick("ninechars", 1, 9), "ninechar1");
    assert.equal(fallbackNick("ninechars", 12, 9), "ninecha12");
  });
});

describe("case mapping", () => {
  test("rfc1459 folds []\\~ onto {}|^", () => {
    assert.equal(casefold("Nick[A]\\~"), "nick{a}|^");
    assert.equal(casefold("Nick[A]\\~", "strict-rfc1459"), "nick{a}|~");
    assert.equal(casefold("Nick[A]\\~", "ascii"), "nick[a]\\~");
    // Folded again (remembered): still by each mapping's own rules.
    for (let round = 0; round < 2; round++) {
      assert.equal(casefold("Nick[A]\\~"), "nick{a}|^");
      assert.equal(casefold("Nick[A]\\~", "strict-rfc1459"), "nick{a}|~");
      assert.equal(casefold("Nick[A]\\~", "ascii"), "nick[a]\\~");
    }
  });
});

describe("templates and escaping", () => {
  test("ghost user IDs are casefolded and escaped reversibly", () => {
    assert.equal(ghostUserId("irc_libera_$NICK", "Alice", "example.org"), "@irc_libera_alice:example.org");
    const local = escapeNickForLocalpart("We[i]rd^Nick|");
    assert.match(local, /^[a-z0-9._=\-/]+$/);
    assert.equal(unescapeLocalpart(local), casefold("We[i]rd^Nick|"));
    assert.equal(escapeNickForLocalpart("a=b"), "a=3db");
  });

  test("ghost user IDs made again (remembered) still depend on the mapping, template and domain", () => {
    for (let round = 0; round < 2; round++) {
      assert.equal(ghostUserId("irc_$NICK", "A[b]", "x.org", "rfc1459"), "@irc_a=7bb=7d:x.org");
      assert.equal(ghostUserId("irc_$NICK", "A[b]", "x.org", "ascii"), "@irc_a=5bb=5d:x.org");
      assert.equal(ghostUserId("oftc_$NICK", "A[b]", "x.org", "ascii"), "@oftc_a=5bb=5d:x.org");
      assert.equal(ghostUserId("oftc_$NICK", "A[b]", "y.org", "ascii"), "@oftc_a=5bb=5d:y.org");
    }
  });

  test("aliases and fills", () => {
    assert.equal(portalAlias("irc_libera_$CHANNEL", "#rust", "example.org"), "#irc_libera_#rust:example.org");
    assert.equal(fillTemplate("$LOCALPART[m] $UNKNOWN", { LOCALPART: "bob" }), "bob[m] $UNKNOWN");
  });

  test("namespace regexes cover what the templates produce, and escape the rest", () => {
    const re = new RegExp(`^${templateRegex("@", "irc.libera_$NICK", "example.org")}$`);
    assert.ok(re.test(ghostUserId("irc.libera_$NICK", "Some[Nick]", "example.org")));
    assert.ok(!re.test("@ircXlibera_x:example.org"));
    assert.ok(!re.test("@irc.libera_x:exampleXorg"));
  });
});

describe("lines from Matrix", () => {
  test("CR, LF and NUL can never start a raw IRC line", () => {
    assert.deepEqual(toIrcLines("a\r\nQUIT :bye"), ["a", "QUIT :bye"]);
    assert.deepEqual(toIrcLines("a\rb\nc\r\n\r\nd"), ["a", "b", "c", "d"]);
    assert.deepEqual(toIrcLines("nul\0byte"), ["nulbyte"]);
    assert.deepEqual(toIrcLines("\x01VERSION\x01"), ["VERSION"]);
    for (const line of toIrcLines("x\u2028y\r\n\0\nz")) assert.doesNotMatch(line, /[\r\n\0]/);
  });
});

describe("IRC text", () => {
  test("formatting codes are stripped from bodies", () => {
    assert.equal(stripIrcFormatting("\x02bold\x02 \x0304,12red\x03 \x1ditalic\x0f \x04ff0000hex"), "bold red italic hex");
  });

  test("channel names by CHANTYPES", () => {
    assert.ok(isChannelName("#rust"));
    assert.ok(!isChannelName("alice"));
    assert.ok(isChannelName("!abc", "#!"));
  });
});

describe("reading IDs back through their templates", () => {
  test("the channel of a portal alias and the nick of a ghost", () => {
    assert.equal(readTemplate("#", "irc_libera_$CHANNEL", "CHANNEL", "ex.org", "#irc_libera_#rust:ex.org"), "#rust");
    assert.equal(readTemplate("@", "irc_libera_$NICK", "NICK", "ex.org", "@irc_libera_alice=5bm=5d:ex.org"), "alice=5bm=5d");
    assert.equal(readTemplate("@", "$NICK.irc", "NICK", "ex.org", "@bob.irc:ex.org"), "bob");
  });

  test("IDs of another template or server are not read", () => {
    assert.equal(readTemplate("#", "irc_libera_$CHANNEL", "CHANNEL", "ex.org", "#irc_oftc_#rust:ex.org"), null);
    assert.equal(readTemplate("#", "irc_libera_$CHANNEL", "CHANNEL", "ex.org", "#irc_libera_#rust:other.org"), null);
    assert.equal(readTemplate("@", "irc_libera_$NICK", "NICK", "ex.org", "@irc_libera_:ex.org"), null);
  });
});

describe("channel allow and deny patterns", () => {
  test("wildcards and case", () => {
    assert.ok(matchesChannelPattern("#rust-*", "#Rust-Beginners"));
    assert.ok(matchesChannelPattern("#a?c", "#abc"));
    assert.ok(!matchesChannelPattern("#a?c", "#abbc"));
    assert.ok(matchesChannelPattern("#[x]", "#{x}"), "rfc1459: [ and { are one letter");
    assert.ok(!matchesChannelPattern("#a.c", "#abc"), "regex characters are literal");
  });

  test("deny wins; an empty allow list allows all", () => {
    assert.ok(channelAllowed("#rust", [], []));
    assert.ok(!channelAllowed("#rust", ["#go*"], []));
    assert.ok(!channelAllowed("#rust-ops", ["#rust*"], ["#*-ops"]));
    assert.ok(channelAllowed("#rust", ["#rust*"], ["#*-ops"]));
  });
});

describe("IRC case mapping folds what servers fold, nothing more", () => {
  test("A-Z and rfc1459 punctuation fold; other letters do not (JÜRGEN is not jürgen)", () => {
    assert.equal(casefold("NiCk[]\\~"), "nick{}|^");
    assert.equal(casefold("JÜRGEN"), "jÜrgen");
    assert.notEqual(casefold("JÜRGEN"), casefold("jürgen"));
    assert.equal(casefold("ÄB", "ascii"), "Äb");
  });
});
