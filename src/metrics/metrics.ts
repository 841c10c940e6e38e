/**
 * Prometheus metrics, served at GET /metrics on the appservice port. One registry for the
 * process; the names follow Prometheus conventions (`_total` for counters).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export const registry = new Registry();

/** What each network's pool reports when metrics are scraped (computed then, not kept up to date). */
export interface PoolStats {
  network: string;
  states: Record<string, number>;
  channelMemberships: number;
}
export const poolStatsSources = new Set<() => PoolStats>();
const allPoolStats = () => [...poolStatsSources].map((source) => source());

export const metrics = {
  transactions: new Counter({
    name: "bridge_appservice_transactions_total",
    help: "Transactions received from the homeserver, by result (accepted, duplicate, failed)",
    labelNames: ["result"] as const,
    registers: [registry],
  }),
  messagesRelayed: new Counter({
    name: "bridge_messages_relayed_total",
    help: "Messages relayed, by direction (matrix_to_irc, irc_to_matrix) and network",
    labelNames: ["direction", "network"] as const,
    registers: [registry],
  }),
  messagesFailed: new Counter({
    name: "bridge_messages_failed_total",
    help: "Messages that could not be relayed, by direction and network",
    labelNames: ["direction", "network"] as const,
    registers: [registry],
  }),
  adminCommands: new Counter({
    name: "bridge_admin_commands_total",
    help: "Admin room commands, by command and result (ok, error, unknown)",
    labelNames: ["command", "result"] as const,
    registers: [registry],
  }),
  portalsOpened: new Counter({
    name: "bridge_portal_rooms_opened_total",
    help: "Portal rooms the bridge created for channels, by network",
    labelNames: ["network"] as const,
    registers: [registry],
  }),
  ircConnections: new Gauge({
    name: "bridge_irc_connections",
    help: "IRC connections by network and state",
    labelNames: ["network", "state"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const { network, states } of allPoolStats()) for (const [state, n] of Object.entries(states)) this.set({ network, state }, n);
    },
  }),
  ircChannelMemberships: new Gauge({
    name: "bridge_irc_channel_memberships",
    help: "Channels joined, summed over the bridge's IRC connections, by network",
    labelNames: ["network"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const { network, channelMemberships } of allPoolStats()) this.set({ network }, channelMemberships);
    },
  }),
  connectAttempts: new Counter({
    name: "bridge_irc_connect_attempts_total",
    help: "IRC connection attempts, by network",
    labelNames: ["network"] as const,
    registers: [registry],
  }),
  connectFailures: new Counter({
    name: "bridge_irc_connect_failures_total",
    help: "IRC connection attempts that failed, by network",
    labelNames: ["network"] as const,
    registers: [registry],
  }),
  connectQueueDepth: new Gauge({
    name: "bridge_irc_connect_queue_depth",
    help: "Connection attempts waiting for or in the rate limiter, by network",
    labelNames: ["network"] as const,
    registers: [registry],
  }),
  linesDeduplicated: new Counter({
    name: "bridge_irc_lines_deduplicated_total",
    help: "Channel lines dropped because another connection already delivered them, by network",
    labelNames: ["network"] as const,
    registers: [registry],
  }),
  linesReplayed: new Counter({
    name: "bridge_irc_lines_replayed_total",
    help: "Channel lines a connection replayed on taking over delivery, because the one before it missed them, by network",
    labelNames: ["network"] as const,
    registers: [registry],
  }),
  offlineQueued: new Gauge({
    name: "bridge_irc_offline_queued_messages",
    help: "Matrix messages waiting for their sender's IRC connection to come back, by network",
    labelNames: ["network"] as const,
    registers: [registry],
  }),
  offlineDropped: new Counter({
    name: "bridge_irc_offline_dropped_messages_total",
    help: "Matrix messages dropped while their sender's IRC connection was down (sender told), by network",
    labelNames: ["network"] as const,
    registers: [registry],
  }),
  roomQueueDepth: new Gauge({
    name: "bridge_room_queue_depth",
    help: "Items waiting in the per-room ordered queues towards Matrix",
    registers: [registry],
  }),
  ircToMatrixLatency: new Histogram({
    name: "bridge_irc_to_matrix_delivery_seconds",
    help: "Time from an IRC line arriving to its Matrix event being sent",
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  }),
};

let defaultsCollected = false;
export function collectProcessMetrics(): void {
  if (defaultsCollected) return;
  collectDefaultMetrics({ register: registry });
  defaultsCollected = true;
}
