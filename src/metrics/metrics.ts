/**
 * Prometheus metrics, served at GET /metrics (on `metrics.port`, else on the appservice port). One registry for the
 * process; the names follow Prometheus conventions (`_total` for counters).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { DeferredCount, DeferredCounts, DeferredGauge, DeferredObservations } from "./deferred.js";

export const registry = new Registry();

/** What each network's pool reports when metrics are scraped (computed then, not kept up to date). */
export interface PoolStats {
  network: string;
  states: Record<string, number>;
  channelMemberships: number;
}
export const poolStatsSources = new Set<() => PoolStats>();
const allPoolStats = () => [...poolStatsSources].map((source) => source());
/** The deepest room queue, read when metrics are scraped (computing it per push would cost O(rooms)). */
export const roomQueueDeepestSources = new Set<() => number>();
/** The transaction journal's events being handled, and since when the oldest (ms since the epoch), read when scraped. */
export const journalSources = new Set<() => { pending: number; oldestSince: number | null }>();
const journal = () => [...journalSources].map((source) => source());
/** /ready's checks, evaluated when metrics are scraped (so Prometheus can alert on them). */
export const readinessSources = new Set<() => Promise<{ name: string; ok: boolean }[]>>();

export const metrics = {
  transactions: new Counter({
    name: "bridge_appservice_transactions_total",
    help: "Transactions received from the homeserver, by result (accepted, duplicate, failed, refused)",
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
  botExcludedChannels: new Gauge({
    name: "bridge_bot_excluded_channels",
    help: "Channels the bridge bot was kicked from and cannot rejoin (banned, invite-only, keyed), by network",
    labelNames: ["network"] as const,
    registers: [registry],
  }),
  powerLevelEvents: new Counter({
    name: "bridge_power_level_events_total",
    help: "m.room.power_levels events the bridge wrote (chanop sync)",
    registers: [registry],
  }),
  powerLevelChecks: new Counter({
    name: "bridge_power_level_checks_total",
    help: "Rooms' power levels compared with IRC at the end of a window, by result (written, unchanged, powerless: the bot may not change them, waiting: the channel's members or modes not known yet)",
    labelNames: ["result"] as const,
    registers: [registry],
  }),
  roomModeChanges: new Counter({
    name: "bridge_room_mode_changes_total",
    help: "Join rule and directory changes made because of IRC channel modes, by kind",
    labelNames: ["kind"] as const,
    registers: [registry],
  }),
  portalsOpened: new Counter({
    name: "bridge_portal_rooms_opened_total",
    help: "Portal rooms the bridge created for channels, by network",
    labelNames: ["network"] as const,
    registers: [registry],
  }),
  provisioning: new Counter({
    name: "bridge_provisioning_total",
    help: "Provisioning steps by outcome: link requests asked, approved, refused, expired, failed, linked without approval, and unlinks",
    labelNames: ["outcome"] as const,
    registers: [registry],
  }),
  rateLimited: new Counter({
    name: "bridge_rate_limited_total",
    help: "Requests refused by a rate limit, by kind (portal, pm_room) and network",
    labelNames: ["kind", "network"] as const,
    registers: [registry],
  }),
  provisioningRequests: new Counter({
    name: "bridge_provisioning_requests_total",
    help: "Requests to the provisioning HTTP API, by route and answer status",
    labelNames: ["route", "status"] as const,
    registers: [registry],
  }),
  pmsDropped: new Counter({
    name: "bridge_pms_dropped_total",
    help: "Private messages from IRC not delivered on purpose, by reason (ignored, not_in_room, rate_limited) and network",
    labelNames: ["reason", "network"] as const,
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
  linesRecovered: new Counter({
    name: "bridge_irc_lines_recovered_total",
    help: "Channel lines said while the bridge was away, recovered from the history the IRC server replays on join, by network",
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
  ircLinesDropped: new Counter({
    name: "bridge_irc_lines_dropped_total",
    help: "Lines from IRC servers dropped, by network and reason (too_long, malformed, failed: handling it threw)",
    labelNames: ["network", "reason"] as const,
    registers: [registry],
  }),
  roomQueueDepth: new Gauge({
    name: "bridge_room_queue_depth",
    help: "Items waiting in the per-room ordered queues towards Matrix",
    registers: [registry],
  }),
  roomQueueDeepest: new Gauge({
    name: "bridge_room_queue_deepest",
    help: "Items waiting in the deepest single room's ordered queue towards Matrix",
    registers: [registry],
    collect() {
      this.set(Math.max(0, ...[...roomQueueDeepestSources].map((source) => source())));
    },
  }),
  roomQueueDropped: new Counter({
    name: "bridge_room_queue_dropped_total",
    help: "Items refused by a full room queue, by kind (irc_line, ...) and which cap (key: one room, total: all rooms)",
    labelNames: ["kind", "scope"] as const,
    registers: [registry],
  }),
  membershipPending: new Gauge({
    name: "bridge_membership_pending_changes",
    help: "IRC membership changes waiting (coalesced per ghost) to be mirrored in Matrix rooms",
    registers: [registry],
  }),
  membershipChanges: new Counter({
    name: "bridge_membership_changes_total",
    help: "IRC membership changes towards Matrix by result: applied, coalesced (no Matrix traffic), dropped (cap), failed",
    labelNames: ["result"] as const,
    registers: [registry],
  }),
  noticeQueueDepth: new Gauge({
    name: "bridge_notice_queue_depth",
    help: "Connection notices waiting for the admin-room pacer",
    registers: [registry],
  }),
  noticesDropped: new Counter({
    name: "bridge_notices_dropped_total",
    help: "Connection notices dropped because the admin-room pacer's queue was full",
    registers: [registry],
  }),
  relaySeconds: new Histogram({
    name: "bridge_relay_seconds",
    help: "Time the bridge itself adds to a message: Matrix to IRC, transaction received to the first line written to the IRC socket; IRC to Matrix, line read to the homeserver's answer, minus the homeserver's own time",
    labelNames: ["direction"] as const,
    buckets: [0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10],
    registers: [registry],
  }),
  ircToMatrixLatency: new Histogram({
    name: "bridge_irc_to_matrix_delivery_seconds",
    help: "Time from an IRC line arriving to its Matrix event being sent",
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  }),
  messageLinks: new Gauge({
    name: "bridge_message_links",
    help: "Event ID <-> IRC msgid links in the store (at most store.maxMessageLinks)",
    registers: [registry],
  }),
  canaryRoundtrip: new Histogram({
    name: "bridge_canary_roundtrip_seconds",
    help: "Time from the canary's line being sent on IRC to the bridge delivering it (through the bot), by network",
    labelNames: ["network"] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  }),
  canaryFailures: new Counter({
    name: "bridge_canary_failures_total",
    help: "Canary probes that did not come back, by network and reason (missed: sent, not delivered in time; not_sent: the canary could not send)",
    labelNames: ["network", "reason"] as const,
    registers: [registry],
  }),
  homeserverRequests: new Counter({
    name: "bridge_homeserver_requests_total",
    help: "HTTP requests to the homeserver, by outcome (ok: 2xx/3xx, client_error: 4xx, server_error: 5xx, failed: no answer, e.g. a timeout)",
    labelNames: ["outcome"] as const,
    registers: [registry],
  }),
  journalPending: new Gauge({
    name: "bridge_journal_pending_events",
    help: "Acknowledged Matrix events being handled (in the journal until they are bridged or their sender told)",
    registers: [registry],
    collect() {
      this.set(journal().reduce((n, j) => n + j.pending, 0));
    },
  }),
  journalOldest: new Gauge({
    name: "bridge_journal_oldest_pending_seconds",
    help: "Age of the oldest acknowledged Matrix event still being handled (0 when none)",
    registers: [registry],
    collect() {
      const since = journal().flatMap((j) => (j.oldestSince === null ? [] : [j.oldestSince]));
      this.set(since.length ? (Date.now() - Math.min(...since)) / 1000 : 0);
    },
  }),
  healthChecks: new Gauge({
    name: "bridge_health_check_ok",
    help: "Each /ready check (store, homeserver, journal, network:<id>, canary:<id>): 1 when it passes, 0 when it fails",
    labelNames: ["check"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const source of readinessSources) for (const { name, ok } of await source()) this.set({ check: name }, ok ? 1 : 0);
    },
  }),
  ghostUserQueries: new Counter({
    name: "bridge_ghost_user_queries_total",
    help: "The homeserver's user queries for ghosts, by answer (known, roster, whois, absent, busy)",
    labelNames: ["answer"] as const,
    registers: [registry],
  }),
  mediaRequests: new Counter({
    name: "bridge_media_requests_total",
    help: "Requests for media links, by outcome (served, head, bad_link, expired, redacted, not_found, too_large, upstream_error, timeout, too_slow, aborted, method, busy, client_busy)",
    labelNames: ["outcome"] as const,
    registers: [registry],
  }),
  mediaBytes: new Counter({
    name: "bridge_media_bytes_total",
    help: "Bytes of media served through links",
    registers: [registry],
  }),
  mediaHomeserverRequests: new Counter({
    name: "bridge_media_homeserver_requests_total",
    help: "Downloads the media links asked of the homeserver, by result (HTTP status, timeout, error)",
    labelNames: ["result"] as const,
    registers: [registry],
  }),
  mediaRedacted: new Gauge({
    name: "bridge_media_redacted_events",
    help: "Redacted events whose media links are refused (kept in the store, bounded)",
    registers: [registry],
  }),
  ircv3Interactions: new Counter({
    name: "bridge_ircv3_interactions_total",
    help: "Reactions, un-reactions, typing notifications and redactions bridged, by kind (reaction, unreaction, typing, redaction) and direction",
    labelNames: ["kind", "direction"] as const,
    registers: [registry],
  }),
};

/** The updates made for every relayed message, held until the metrics are read (deferred.ts). */
export const relayMetrics = {
  relayedToIrc: new DeferredCounts(metrics.messagesRelayed, (network) => ({ direction: "matrix_to_irc", network })),
  relayedToMatrix: new DeferredCounts(metrics.messagesRelayed, (network) => ({ direction: "irc_to_matrix", network })),
  secondsToIrc: new DeferredObservations(metrics.relaySeconds, { direction: "matrix_to_irc" }),
  secondsToMatrix: new DeferredObservations(metrics.relaySeconds, { direction: "irc_to_matrix" }),
  ircToMatrixDelivery: new DeferredObservations(metrics.ircToMatrixLatency),
  homeserverRequests: new DeferredCounts(metrics.homeserverRequests, (outcome) => ({ outcome })),
  transactionsAccepted: new DeferredCount(metrics.transactions, { result: "accepted" }),
  roomQueueDepth: new DeferredGauge(metrics.roomQueueDepth),
  messageLinks: new DeferredGauge(metrics.messageLinks),
};

let defaultsCollected = false;
export function collectProcessMetrics(): void {
  if (defaultsCollected) return;
  // The event-loop delay monitor wakes the process every `precision` ms, and each wakeup costs
  // ~0.1 ms of CPU on a small VM: at the default (10 ms) it was most of an idle bridge's CPU, at
  // 100 ms still ~1 ms per second (0.2 ms per message at 5 messages/s). A stall overlapping one
  // of these once-a-second samples still shows in the lag metrics.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 1_000 });
  defaultsCollected = true;
}
