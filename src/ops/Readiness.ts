/**
 * What GET /ready answers: a list of checks, each `{ name, ok, detail }`, and ready only when
 * every one is ok. Each check asks whether traffic flows, not only whether a part exists:
 *
 * - `store`: a cheap read answers within `health.storeTimeoutMs`;
 * - `homeserver`: it answered a call of the bridge within `health.homeserverMaxSilenceSeconds`
 *   (every call counts, see matrix/httpTimeout.ts; an idle bridge pings it);
 * - `journal`: the oldest acknowledged event still being handled is younger than
 *   `health.maxJournalAgeSeconds`;
 * - `network:<id>`: the network's bot is connected and in every channel it should be in
 *   (linked channels and the canary's; channels IRC refused it for good are named, not failed:
 *   they have their own metric, bridge_bot_excluded_channels, and their users are told);
 * - `canary:<id>`: fewer than `maxMissed` canary probes in a row were missed (see Canary).
 */
import type { BridgeConfig } from "../config/schema.js";
import type { IrcConnection } from "../irc/IrcConnection.js";
import type { DataStore } from "../store/DataStore.js";

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface Readiness {
  ready: boolean;
  checks: Check[];
}

/** What the checks read, passed in by the bridge. */
export interface ReadinessSources {
  store: DataStore;
  homeserverLastAnsweredAt(): number;
  journal(): { pending: number; oldestSince: number | null };
  /** Per network: its bot and the channels (as typed) the bot should be in. */
  networks(): { id: string; bot: IrcConnection; channels: string[] }[];
  canaries(): { check(): Check }[];
}

const seconds = (ms: number) => `${ms < 10_000 ? (ms / 1000).toFixed(1) : Math.round(ms / 1000)} s`;
const list = (names: string[]) => (names.length > 5 ? `${names.slice(0, 5).join(", ")} and ${names.length - 5} more` : names.join(", "));

export class ReadinessChecks {
  constructor(
    private readonly health: BridgeConfig["health"],
    private readonly sources: ReadinessSources,
  ) {}

  async evaluate(): Promise<Readiness> {
    const checks = [await this.store(), this.homeserver(), this.journal(), ...this.sources.networks().map((n) => networkCheck(n.id, n.bot, n.channels)), ...this.sources.canaries().map((c) => c.check())];
    return { ready: checks.every((c) => c.ok), checks };
  }

  private async store(): Promise<Check> {
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.health.storeTimeoutMs} ms`)), this.health.storeTimeoutMs);
    });
    try {
      await Promise.race([this.sources.store.getRecord("health", "probe"), timeout]);
      return { name: "store", ok: true, detail: `answered in ${Date.now() - started} ms` };
    } catch (err) {
      return { name: "store", ok: false, detail: (err as Error).message };
    } finally {
      clearTimeout(timer);
    }
  }

  private homeserver(): Check {
    const at = this.sources.homeserverLastAnsweredAt();
    const maxMs = this.health.homeserverMaxSilenceSeconds * 1000;
    if (at === 0) return { name: "homeserver", ok: false, detail: "has not answered yet" };
    const silentMs = Date.now() - at;
    return { name: "homeserver", ok: silentMs <= maxMs, detail: `last answered ${seconds(silentMs)} ago (at most ${seconds(maxMs)} allowed)` };
  }

  private journal(): Check {
    const { pending, oldestSince } = this.sources.journal();
    const maxMs = this.health.maxJournalAgeSeconds * 1000;
    if (oldestSince === null) return { name: "journal", ok: true, detail: "no event waiting" };
    const ageMs = Date.now() - oldestSince;
    return { name: "journal", ok: ageMs <= maxMs, detail: `${pending} events being handled, the oldest for ${seconds(ageMs)} (at most ${seconds(maxMs)} allowed)` };
  }
}

/** A network's bot: connected, and in each channel it still tries to be in. */
export function networkCheck(id: string, bot: Pick<IrcConnection, "state" | "nick" | "isJoined" | "wants">, channels: string[]): Check {
  const name = `network:${id}`;
  if (bot.state !== "connected") return { name, ok: false, detail: `the bot is not connected (${bot.state})` };
  const joined = channels.filter((c) => bot.isJoined(c));
  const missing = channels.filter((c) => !bot.isJoined(c) && bot.wants(c));
  const refused = channels.filter((c) => !bot.isJoined(c) && !bot.wants(c));
  const parts = [`connected as ${bot.nick}, in ${joined.length} of ${channels.length} channels`];
  if (missing.length) parts.push(`not in ${list(missing)} yet`);
  if (refused.length) parts.push(`kept out of ${list(refused)} by IRC`);
  return { name, ok: missing.length === 0, detail: parts.join("; ") };
}
