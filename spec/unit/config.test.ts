import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import yaml from "js-yaml";
import { z } from "zod";
import { ConfigError, loadConfig, parseConfig } from "../../src/config/load.js";
import { configSchema } from "../../src/config/schema.js";
import { buildRegistration, registrationMismatches } from "../../src/registration.js";

const ROOT = join(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "../../..");
const SAMPLE = join(ROOT, "config.sample.yaml");

/** Every key path the schema knows, with `*` standing for record keys (networks, mappings). */
function schemaKeys(schema: z.ZodType, prefix = ""): string[] {
  let s: z.ZodType = schema;
  for (;;) {
    if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap() as z.ZodType;
    else if (s instanceof z.ZodPipe) s = s.in as z.ZodType;
    else break;
  }
  if (s instanceof z.ZodObject) {
    return Object.entries(s.shape as Record<string, z.ZodType>).flatMap(([key, child]) => {
      const path = prefix ? `${prefix}.${key}` : key;
      return [path, ...schemaKeys(child, path)];
    });
  }
  if (s instanceof z.ZodRecord) return schemaKeys(s.valueType as z.ZodType, `${prefix}.*`);
  return [];
}

/** Every key path present in a parsed YAML document, records collapsed to `*`. */
function documentKeys(doc: unknown, recordPaths: Set<string>, prefix = ""): Set<string> {
  const out = new Set<string>();
  if (doc && typeof doc === "object" && !Array.isArray(doc)) {
    for (const [key, value] of Object.entries(doc)) {
      const segment = recordPaths.has(prefix) ? "*" : key;
      const path = prefix ? `${prefix}.${segment}` : segment;
      out.add(path);
      for (const k of documentKeys(value, recordPaths, path)) out.add(k);
    }
  }
  return out;
}

describe("config", () => {
  test("config.sample.yaml is valid", () => {
    const config = loadConfig(SAMPLE);
    assert.deepEqual(Object.keys(config.networks), ["libera", "gimpnet"]);
    assert.equal(config.store.engine, "nedb");
  });

  test("config.sample.yaml documents every key of the schema", () => {
    const keys = schemaKeys(configSchema);
    const records = new Set(keys.filter((k) => keys.some((other) => other.startsWith(`${k}.*.`))));
    const documented = documentKeys(yaml.load(readFileSync(SAMPLE, "utf8")), records);
    const missing = keys.filter((k) => !k.endsWith(".*") && !documented.has(k));
    assert.deepEqual(missing, []);
    assert.ok(keys.length > 30, `expected a full schema walk, got ${keys.length} keys`);
  });

  test("defaults fill what is left out", () => {
    const config = parseConfig({
      homeserver: { url: "http://localhost:8008", domain: "localhost" },
      networks: { net: { name: "Net", address: "irc.example.org", botNick: "Bot", ghostUserTemplate: "net_$NICK", aliasTemplate: "net_$CHANNEL" } },
    });
    assert.equal(config.appservice.port, 9995);
    assert.equal(config.homeserver.requestTimeoutMs, 30_000);
    assert.equal(config.networks.net.port, 6697);
    assert.equal(config.networks.net.tls.enabled, true);
    assert.equal(config.networks.net.puppetNickTemplate, "$LOCALPART[m]");
    assert.deepEqual(config.networks.net.mappings, {});
  });

  test("errors name the key path and what was expected", () => {
    const problems = (raw: unknown) => {
      try {
        parseConfig(raw);
      } catch (err) {
        assert.ok(err instanceof ConfigError);
        return err.problems;
      }
      assert.fail("expected a ConfigError");
    };
    assert.deepEqual(problems({ homeserver: { domain: "x" }, networks: {} }), [
      "homeserver.url: is required (expected string)",
      "networks: expected at least one network",
    ]);
    const bad = problems({
      homeserver: { url: "ftp://x", domain: "x", extra: 1 },
      networks: { Bad: {} },
    });
    assert.ok(bad.includes("homeserver.extra: unknown key"), bad.join("\n"));
    assert.ok(bad.some((p) => p.startsWith("homeserver.url: expected an http(s) URL")), bad.join("\n"));
    assert.ok(bad.some((p) => p.startsWith("networks.Bad: expected a lower-case network id")), bad.join("\n"));
    const mapping = problems({
      homeserver: { url: "http://x", domain: "x" },
      networks: { n: { name: "N", address: "a", botNick: "B", ghostUserTemplate: "n_$NICK", aliasTemplate: "n_$CHANNEL", mappings: { nochan: { roomIds: ["!a:x"] }, "#chan": { roomIds: ["room"] } } } },
    });
    assert.ok(mapping.some((p) => p.startsWith("networks.n.mappings.nochan: expected a channel name")), mapping.join("\n"));
    assert.ok(mapping.some((p) => p.startsWith("networks.n.mappings.#chan.roomIds.0: expected a room ID")), mapping.join("\n"));
  });

  test("a generated registration matches its config, and a changed template is caught", () => {
    const config = loadConfig(SAMPLE);
    const reg = buildRegistration(config, "http://127.0.0.1:9995");
    assert.deepEqual(registrationMismatches(config, reg), []);
    config.networks.libera.ghostUserTemplate = "libera_$NICK";
    config.appservice.botLocalpart = "otherbot";
    const problems = registrationMismatches(config, reg);
    assert.equal(problems.length, 2);
    assert.match(problems.join("\n"), /sender_localpart 'ircbot' differs/);
    assert.match(problems.join("\n"), /networks\.libera\.ghostUserTemplate/);
  });
});
