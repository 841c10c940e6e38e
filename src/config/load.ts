import { readFileSync } from "node:fs";
import yaml from "js-yaml";
import type { z } from "zod";
import { configSchema, type BridgeConfig } from "./schema.js";

/** A config problem a person can fix: every line names the key path and what was expected. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`Invalid config ${file}:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

function keyPath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? "(top level)" : path.map(String).join(".");
}

/** Turns one zod issue into "key.path: what was expected". */
export function describeIssue(issue: z.core.$ZodIssue): string[] {
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => `${keyPath([...issue.path, key])}: unknown key`);
  }
  if (issue.code === "invalid_key") {
    // A bad record key (a network id, a channel name): report the key's own problem.
    return issue.issues.map((inner) => `${keyPath(issue.path)}: ${inner.message.replace(/^Invalid input: /, "")}`);
  }
  if (issue.code === "invalid_type" && issue.input === undefined) {
    return [`${keyPath(issue.path)}: is required (expected ${issue.expected})`];
  }
  return [`${keyPath(issue.path)}: ${issue.message.replace(/^Invalid input: /, "")}`];
}

export function parseConfig(raw: unknown, file = "<config>"): BridgeConfig {
  const result = configSchema.safeParse(raw ?? {}, { reportInput: true });
  if (!result.success) throw new ConfigError(file, result.error.issues.flatMap(describeIssue));
  return result.data;
}

export function loadConfig(file: string): BridgeConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(file, [`cannot read the file: ${(err as Error).message}`]);
  }
  let raw: unknown;
  try {
    raw = yaml.load(text, { filename: file });
  } catch (err) {
    throw new ConfigError(file, [`not valid YAML: ${(err as Error).message}`]);
  }
  return parseConfig(raw, file);
}
