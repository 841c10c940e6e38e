/**
 * The command line as an admin uses it: -r writes a registration, broken configs and
 * mismatched registrations stop the bridge with a message naming the problem.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { randomBytes } from "node:crypto";
import yaml from "js-yaml";
import { MAIN_JS } from "../harness/bridgeProcess.js";

const dir = mkdtempSync(join(tmpdir(), "irc-bridge-cli-"));
const SAMPLE = join(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "../../../config.sample.yaml");

function run(...args: string[]) {
  const result = spawnSync(process.execPath, [MAIN_JS, ...args], { encoding: "utf8", timeout: 30_000 });
  return { code: result.status, out: result.stdout + result.stderr };
}

function writeConfig(name: string, mutate: (c: Record<string, any>) => void): string {
  const config = yaml.load(readFileSync(SAMPLE, "utf8")) as Record<string, any>;
  mutate(config);
  const file = join(dir, name);
  writeFileSync(file, yaml.dump(config));
  return file;
}

describe("command line", () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("--help explains the commands", () => {
    const { code, out } = run("--help");
    assert.equal(code, 0);
    assert.match(out, /-r, --generate-registration/);
    assert.match(out, /-c, --config/);
  });

  test("-r writes a registration with random tokens and exclusive namespaces for every network", () => {
    const reg = join(dir, "registration.yaml");
    const { code, out } = run("-r", "-u", "http://127.0.0.1:9995", "-c", SAMPLE, "-f", reg);
    assert.equal(code, 0, out);
    const written = yaml.load(readFileSync(reg, "utf8")) as Record<string, any>;
    assert.equal(written.url, "http://127.0.0.1:9995");
    assert.equal(written.sender_localpart, "ircbot");
    assert.equal(written.rate_limited, false);
    assert.match(written.as_token, /^[0-9a-f]{64}$/);
    assert.notEqual(written.as_token, written.hs_token);
    assert.deepEqual(
      written.namespaces.users.map((n: { regex: string; exclusive: boolean }) => [n.regex, n.exclusive]),
      [["@irc_libera_.*:localhost", true], ["@irc_gimpnet_.*:localhost", true]],
    );
    assert.equal(written.namespaces.aliases.length, 2);
    // A real registration is not replaced by accident.
    const again = run("-r", "-u", "http://127.0.0.1:9995", "-c", SAMPLE, "-f", reg);
    assert.equal(again.code, 2);
    assert.match(again.out, /--force/);
  });

  for (const [name, mutate, expected] of [
    ["unknown key", (c: Record<string, any>) => (c.homeserver.urll = "x"), /homeserver\.urll: unknown key/],
    ["wrong type", (c: Record<string, any>) => (c.networks.libera.port = "6697"), /networks\.libera\.port: expected number/],
    ["missing homeserver URL", (c: Record<string, any>) => delete c.homeserver.url, /homeserver\.url: is required/],
    ["bad template", (c: Record<string, any>) => (c.networks.gimpnet.ghostUserTemplate = "irc_gimpnet"), /networks\.gimpnet\.ghostUserTemplate: expected a template containing \$NICK/],
    ["bad permission level", (c: Record<string, any>) => (c.permissions["*"] = "everyone"), /permissions\.\*: .*"none"/],
    ["missing key file", (c: Record<string, any>) => (c.credentials.keyFile = "/nonexistent/passkey.bin"), /credentials\.keyFile: cannot read \/nonexistent\/passkey\.bin/],
  ] as const) {
    test(`a broken config (${name}) exits non-zero naming the key`, () => {
      const config = writeConfig(`${name.replace(/ /g, "-")}.yaml`, mutate);
      const { code, out } = run("-c", config, "-f", join(dir, "registration.yaml"));
      assert.equal(code, 78);
      assert.match(out, expected);
    });
  }

  test("a key file that other users may read is refused, naming it and saying chmod 600", () => {
    const keyFile = join(dir, "open-passkey.bin");
    writeFileSync(keyFile, randomBytes(32));
    chmodSync(keyFile, 0o644);
    const config = writeConfig("open-key.yaml", (c) => (c.credentials.keyFile = keyFile));
    const { code, out } = run("-c", config, "-f", join(dir, "registration.yaml"));
    assert.equal(code, 78, out);
    assert.match(out, new RegExp(`credentials\\.keyFile: ${keyFile.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} .*others.*chmod 600`));
  });

  test("a registration that does not cover a network's ghosts is refused", () => {
    const config = writeConfig("extra-network.yaml", (c) => {
      c.networks.oftc = { ...c.networks.gimpnet, name: "OFTC", ghostUserTemplate: "oftc_$NICK", aliasTemplate: "oftc_$CHANNEL" };
    });
    const { code, out } = run("-c", config, "-f", join(dir, "registration.yaml"));
    assert.equal(code, 78);
    assert.match(out, /networks\.oftc\.ghostUserTemplate: ghosts such as @oftc_somenick:localhost fall outside/);
  });

  test("the documented sample registration is refused with a hint to run -r", () => {
    const { code, out } = run("-c", SAMPLE, "-f", join(SAMPLE, "../registration.yaml"));
    assert.equal(code, 78);
    assert.match(out, /placeholder tokens; generate a real one with -r/);
  });
});
