/**
 * The operator's side of the bridge, in one place so BridgeApp only wires it: the canaries
 * (one per network with a canary channel), the homeserver ping, /ready's checks, and the
 * listener for /metrics, /health and /ready.
 */
import type { Application } from "express";
import type { BridgeConfig } from "../config/schema.js";
import type { IrcMessage } from "../irc/IrcConnection.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import { homeserverLastAnsweredAt } from "../matrix/httpTimeout.js";
import { journalSources, readinessSources } from "../metrics/metrics.js";
import type { DataStore } from "../store/DataStore.js";
import { Canary, canarySettings } from "./Canary.js";
import { HomeserverPing } from "./HomeserverPing.js";
import { OpsHttp } from "./OpsHttp.js";
import { ReadinessChecks } from "./Readiness.js";

export interface OperationsDeps {
  store: DataStore;
  /** The networks' pools (filled by the bridge as it makes them). */
  pools: Map<string, NetworkPool>;
  /** The channels (as typed) linked to rooms on a network. */
  linkedChannels(networkId: string): string[];
  /** The transaction journal's events being handled. */
  journal(): { pending: number; oldestSince: number | null };
  /** One cheap call to the homeserver through the bridge's own client. */
  pingHomeserver(timeoutMs: number): Promise<unknown>;
}

export class Operations {
  private readonly canaries = new Map<string, Canary>();
  private readonly ping: HomeserverPing;
  private readonly http: OpsHttp;
  private readonly journal: () => { pending: number; oldestSince: number | null };
  private readonly checksForMetrics: () => Promise<{ name: string; ok: boolean }[]>;

  constructor(
    private readonly config: BridgeConfig,
    private readonly deps: OperationsDeps,
  ) {
    const { health } = config;
    const pingTimeoutMs = Math.min(config.homeserver.requestTimeoutMs, health.homeserverMaxSilenceSeconds * 1000);
    this.ping = new HomeserverPing(() => deps.pingHomeserver(pingTimeoutMs), health.homeserverPingIntervalMs, homeserverLastAnsweredAt);
    const checks = new ReadinessChecks(health, {
      store: deps.store,
      homeserverLastAnsweredAt,
      journal: () => deps.journal(),
      networks: () => [...deps.pools].map(([id, pool]) => ({ id, bot: pool.bot, channels: this.botChannels(id) })),
      canaries: () => [...this.canaries.values()],
    });
    this.http = new OpsHttp(config.metrics, () => checks.evaluate());
    this.journal = () => deps.journal();
    journalSources.add(this.journal);
    this.checksForMetrics = async () => (await checks.evaluate()).checks;
    readinessSources.add(this.checksForMetrics);
  }

  /** Where the bot should be on a network: the linked channels and the canary's. */
  private botChannels(networkId: string): string[] {
    const canary = canarySettings(this.config.networks[networkId]);
    return [...this.deps.linkedChannels(networkId), ...(canary ? [canary.channel] : [])];
  }

  /** Whether the bot keeps to a channel that is not linked: the canary's (it rejoins it when kicked). */
  isCanaryChannel(pool: NetworkPool, channelName: string): boolean {
    const canary = canarySettings(this.config.networks[pool.networkId]);
    return canary !== null && pool.bot.casefold(channelName) === pool.bot.casefold(canary.channel);
  }

  /** A delivered channel line: the canary's to take when it is in the canary channel. */
  takenByCanary(networkId: string, msg: IrcMessage): boolean {
    return this.canaries.get(networkId)?.observe(msg) ?? false;
  }

  /** Serves /metrics, /health and /ready: on their own port, or else on the appservice app. Starts pinging. */
  async listen(appServiceApp: Application): Promise<void> {
    if (this.http.ownPort) await this.http.listen();
    else this.http.addTo(appServiceApp);
    this.ping.start();
  }

  /** Starts each network's canary (after the bots are up, so the bot's link is the first). */
  startCanaries(): void {
    for (const [id, pool] of this.deps.pools) {
      const settings = canarySettings(this.config.networks[id]);
      if (!settings || this.canaries.has(id)) continue;
      const canary = new Canary(pool, settings, this.config.networks[id].quitMessage);
      this.canaries.set(id, canary);
      canary.start();
    }
  }

  async stop(): Promise<void> {
    this.ping.stop();
    journalSources.delete(this.journal);
    readinessSources.delete(this.checksForMetrics);
    await Promise.all([...this.canaries.values()].map((c) => c.stop()));
    await this.http.close();
  }
}
