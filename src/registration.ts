/**
 * The appservice registration: written once with `-r`, read on every start, and checked
 * against the config so that a ghost or alias the bridge would create is always inside the
 * namespaces Synapse gives it.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import yaml from "js-yaml";
import type { BridgeConfig } from "./config/schema.js";
import { ghostUserId, portalAlias, templateRegex } from "./format/template.js";

interface Namespace {
  exclusive: boolean;
  regex: string;
}

export interface Registration {
  id: string;
  url: string | null;
  as_token: string;
  hs_token: string;
  sender_localpart: string;
  rate_limited?: boolean;
  receive_ephemeral?: boolean;
  "de.sorunome.msc2409.push_ephemeral"?: boolean;
  namespaces: { users?: Namespace[]; aliases?: Namespace[]; rooms?: Namespace[] };
}

export class RegistrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RegistrationError";
  }
}

const token = () => randomBytes(32).toString("hex");

export function buildRegistration(config: BridgeConfig, url: string): Registration {
  const domain = config.homeserver.domain;
  const networks = Object.values(config.networks);
  return {
    id: config.appservice.id,
    url,
    as_token: token(),
    hs_token: token(),
    sender_localpart: config.appservice.botLocalpart,
    rate_limited: false,
    receive_ephemeral: true,
    "de.sorunome.msc2409.push_ephemeral": true,
    namespaces: {
      users: networks.map((n) => ({ exclusive: true, regex: templateRegex("@", n.ghostUserTemplate, domain) })),
      aliases: networks.map((n) => ({ exclusive: true, regex: templateRegex("#", n.aliasTemplate, domain) })),
      rooms: [],
    },
  };
}

export function writeRegistration(file: string, registration: Registration): void {
  const header =
    "# Appservice registration for the Matrix-IRC bridge, generated with -r.\n" +
    "# Add this file's path to app_service_config_files in Synapse's homeserver.yaml,\n" +
    "# then restart Synapse. Keep it secret: the tokens authenticate the bridge.\n";
  writeFileSync(file, header + yaml.dump(registration, { lineWidth: -1 }), { mode: 0o600 });
}

export function readRegistration(file: string): Registration {
  let raw: unknown;
  try {
    raw = yaml.load(readFileSync(file, "utf8"));
  } catch (err) {
    throw new RegistrationError(`Cannot read registration ${file}: ${(err as Error).message}`);
  }
  const reg = raw as Partial<Registration> | null;
  for (const key of ["id", "as_token", "hs_token", "sender_localpart"] as const) {
    if (typeof reg?.[key] !== "string" || reg[key] === "") {
      throw new RegistrationError(`Registration ${file}: ${key} is required (expected a string); regenerate it with -r`);
    }
  }
  if (isPlaceholder(reg as Registration)) {
    throw new RegistrationError(`Registration ${file} is the documented sample with placeholder tokens; generate a real one with -r -u <url>`);
  }
  return reg as Registration;
}

const PLACEHOLDER = "CHANGE_ME";

/** The repository's sample registration carries placeholder tokens; real ones never do. */
export function isPlaceholder(reg: Pick<Registration, "as_token" | "hs_token">): boolean {
  return reg.as_token.startsWith(PLACEHOLDER) || reg.hs_token.startsWith(PLACEHOLDER);
}

/** True when `file` exists and holds a real registration (so -r must not overwrite it silently). */
export function holdsRealRegistration(file: string): boolean {
  try {
    const reg = yaml.load(readFileSync(file, "utf8")) as Partial<Registration> | null;
    return typeof reg?.as_token === "string" && typeof reg.hs_token === "string" && !isPlaceholder(reg as Registration);
  } catch {
    return false;
  }
}

function matchesExclusive(namespaces: Namespace[] | undefined, id: string): boolean {
  return (namespaces ?? []).some((ns) => ns.exclusive && new RegExp(`^${ns.regex}$`).test(id));
}

/** Every way the registration and the config disagree, in words; empty when they agree. */
export function registrationMismatches(config: BridgeConfig, reg: Registration): string[] {
  const problems: string[] = [];
  const domain = config.homeserver.domain;
  if (reg.id !== config.appservice.id) {
    problems.push(`registration id '${reg.id}' differs from appservice.id '${config.appservice.id}'`);
  }
  if (reg.sender_localpart !== config.appservice.botLocalpart) {
    problems.push(
      `registration sender_localpart '${reg.sender_localpart}' differs from appservice.botLocalpart '${config.appservice.botLocalpart}'`,
    );
  }
  for (const [id, network] of Object.entries(config.networks)) {
    const ghost = ghostUserId(network.ghostUserTemplate, "SomeNick", domain);
    if (!matchesExclusive(reg.namespaces?.users, ghost)) {
      problems.push(`networks.${id}.ghostUserTemplate: ghosts such as ${ghost} fall outside the registration's exclusive user namespaces`);
    }
    const alias = portalAlias(network.aliasTemplate, "#channel", domain);
    if (!matchesExclusive(reg.namespaces?.aliases, alias)) {
      problems.push(`networks.${id}.aliasTemplate: aliases such as ${alias} fall outside the registration's exclusive alias namespaces`);
    }
  }
  return problems;
}
