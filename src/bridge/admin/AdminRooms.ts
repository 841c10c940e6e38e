/**
 * Admin rooms: a Matrix user invites the bridge bot to a direct chat, and that room becomes
 * where they manage their IRC identity with `!` commands, and where the bridge tells them
 * about their connections. One admin room per user (the newest wins). An invite to a room with
 * other members is not a direct chat: it goes to provisioning's room command when that is on.
 */
import type { Intent } from "matrix-appservice-bridge";
import type { BridgeConfig } from "../../config/schema.js";
import type { NetworkPool } from "../../irc/NetworkPool.js";
import { getLogger } from "../../logging.js";
import type { MatrixEvent } from "../../matrix/DurableAppService.js";
import type { DataStore, UserRecord } from "../../store/DataStore.js";
import type { Permissions } from "../Permissions.js";
import type { Portals } from "../Portals.js";
import { COMMANDS, FEATURES, GENERAL_COMMANDS, type AdminDeps, type CommandContext } from "./commands.js";
import { parseCommand } from "./parse.js";
import { SCRUBBED, commandText, editedEventId, secretCommandIn } from "./secrets.js";
import { metrics } from "../../metrics/metrics.js";

const log = getLogger("bridge/admin");
export class AdminRooms {
  private readonly users = new Map<string, UserRecord>();
  private readonly owners = new Map<string, string>();

  constructor(
    private readonly config: BridgeConfig,
    private readonly store: DataStore,
    private readonly pools: Map<string, NetworkPool>,
    private readonly permissions: Permissions,
    private readonly bot: () => Intent,
    private readonly deps: Omit<AdminDeps, "feature" | "setFeature" | "ignored" | "setIgnored" | "portals"> & { portals: Portals },
    /** Invited to a room with other members: true when it is kept as a room to bridge (provisioning's room command). */
    private readonly groupRoom: (roomId: string, inviter: string) => Promise<boolean> = async () => false,
  ) {}

  async load(): Promise<void> {
    for (const user of await this.store.getUsers()) {
      this.users.set(user.userId, user);
      if (user.adminRoomId) this.owners.set(user.adminRoomId, user.userId);
    }
  }

  isAdminRoom(roomId: string): boolean {
    return this.owners.has(roomId);
  }

  feature(userId: string, name: string): boolean {
    return this.users.get(userId)?.features[name] ?? FEATURES[name]?.default ?? false;
  }

  /** IRC nicks a user ignores on a network, as they typed them. */
  ignored(userId: string, networkId: string): string[] {
    return this.users.get(userId)?.ignored?.[networkId] ?? [];
  }

  /** Whether a user ignores a nick, compared with the network's case mapping. */
  isIgnored(userId: string, networkId: string, nick: string): boolean {
    const list = this.ignored(userId, networkId);
    const pool = this.pools.get(networkId);
    if (list.length === 0 || !pool) return false;
    const folded = pool.bot.casefold(nick);
    return list.some((n) => pool.bot.casefold(n) === folded);
  }

  private async saveUser(userId: string, change: (user: UserRecord) => void): Promise<void> {
    const user = this.users.get(userId) ?? { userId, adminRoomId: null, features: {} };
    change(user);
    this.users.set(userId, user);
    await this.store.upsertUser(user);
  }

  /** The bot was invited to a room that is not bridged: a DM makes it the inviter's admin room. */
  async onBotInvited(roomId: string, inviter: string): Promise<void> {
    const bot = this.bot();
    await bot.join(roomId);
    if (!this.permissions.mayUse(inviter)) {
      await this.say(roomId, "You are not allowed to use this bridge. Ask its admin if you think you should be.");
      await bot.leave(roomId);
      return;
    }
    const members: string[] = await bot.matrixClient.getJoinedRoomMembers(roomId).catch(() => []);
    if (members.some((m) => m !== inviter && m !== bot.userId)) {
      if (await this.groupRoom(roomId, inviter)) return;
      await this.say(roomId, "I only answer commands in a direct chat with one person: invite me to a room of your own.");
      await bot.leave(roomId);
      return;
    }
    const previous = this.users.get(inviter)?.adminRoomId;
    if (previous) this.owners.delete(previous);
    this.owners.set(roomId, inviter);
    await this.saveUser(inviter, (u) => {
      u.adminRoomId = roomId;
    });
    log.info("New admin room", { userId: inviter, roomId });
    const networks = Object.values(this.config.networks).map((n) => n.name).join(", ");
    await this.say(roomId, `This is your admin room for the IRC bridge (${networks}). I will tell you about your IRC connections here. Send !help for the commands.`);
  }

  /** The owner left their admin room: it is one no more. */
  async onLeave(roomId: string, userId: string): Promise<void> {
    if (this.owners.get(roomId) !== userId) return;
    this.owners.delete(roomId);
    await this.saveUser(userId, (u) => {
      u.adminRoomId = null;
    });
    await this.bot().leave(roomId).catch(() => undefined);
  }

  hasAdminRoom(userId: string): boolean {
    return Boolean(this.users.get(userId)?.adminRoomId);
  }

  /** Tells a user something in their admin room; false when they have none. */
  async notify(userId: string, text: string): Promise<boolean> {
    const roomId = this.users.get(userId)?.adminRoomId;
    if (!roomId) return false;
    await this.say(roomId, text);
    return true;
  }

  private async say(roomId: string, text: string): Promise<void> {
    await this.bot().sendMessage(roomId, { msgtype: "m.notice", body: text });
  }

  /**
   * A message in an admin room. An edit is read as the command its new text says (see
   * secrets.ts); a message or edit carrying a secret is redacted, with the one it edits.
   */
  async onMessage(event: MatrixEvent): Promise<void> {
    const roomId = event.room_id as string;
    const sender = event.sender as string;
    if (this.owners.get(roomId) !== sender) return;
    const networkIds = Object.keys(this.config.networks);
    const secret = secretCommandIn(event, networkIds);
    if (secret) await this.redact(roomId, [event.event_id as string, editedEventId(event)]);
    if ((event.content as Record<string, unknown> | undefined)?.[SCRUBBED]) {
      return this.say(roomId, `Your !${secret} arrived while the bridge was restarting, and the bridge never keeps a password or key it has not handled: please send it again.`);
    }
    const body = commandText(event);
    if (body === null) return;
    const parsed = parseCommand(body, networkIds);
    if (!parsed) return this.say(roomId, "Commands start with !. Send !help to list them.");
    const ctx: CommandContext = { userId: sender, roomId, eventId: event.event_id as string, rest: parsed.rest };
    let reply: string;
    const known = parsed.name in COMMANDS || parsed.name in GENERAL_COMMANDS || parsed.name === "help";
    const label = known ? parsed.name : "unknown";
    try {
      reply = await this.run(parsed.name, parsed.networkId, ctx);
      metrics.adminCommands.inc({ command: label, result: known ? "ok" : "unknown" });
    } catch (err) {
      reply = `!${parsed.name}: ${(err as Error).message}`;
      metrics.adminCommands.inc({ command: label, result: "error" });
    }
    await this.say(roomId, reply);
  }

  /** A password or key must not stay in the room's history: the message, and the one an edit replaced. */
  private async redact(roomId: string, eventIds: (string | null)[]): Promise<void> {
    const results = await Promise.allSettled(
      eventIds.filter((id): id is string => Boolean(id)).map((id) => this.bot().matrixClient.redactEvent(roomId, id, "Holds a password or key")),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (!failed) return;
    log.warn("Could not redact a message holding a secret", { roomId, error: (failed.reason as Error).message });
    await this.say(roomId, "I could not remove your message with the password or key (I lack the power to): please delete it yourself.");
  }

  private async run(name: string, networkId: string | null, ctx: CommandContext): Promise<string> {
    if (name === "help") return this.help(ctx.rest.trim().replace(/^!/, ""));
    const deps: AdminDeps = {
      ...this.deps,
      portals: this.deps.portals.openerFor({ userId: ctx.userId }),
      feature: (u, f) => this.feature(u, f),
      setFeature: (u, f, on) => this.saveUser(u, (r) => void (r.features[f] = on)),
      ignored: (u, n) => this.ignored(u, n),
      setIgnored: (u, n, nicks) => this.saveUser(u, (r) => void (r.ignored = { ...r.ignored, [n]: nicks })),
    };
    const general = GENERAL_COMMANDS[name];
    if (general) return general.run(ctx, deps);
    const command = COMMANDS[name];
    if (!command) return `Unknown command !${name}.\n\n${this.help("")}`;
    const ids = [...this.pools.keys()];
    const id = networkId ?? (ids.length === 1 ? ids[0] : null);
    if (!id) throw new Error(`which network? Say it first, e.g. ${command.usage.replace("[network]", ids[0])}. Networks: ${ids.join(", ")}`);
    return command.run(ctx, deps, this.pools.get(id)!);
  }

  private help(name: string): string {
    const all = { ...COMMANDS, ...GENERAL_COMMANDS, help: { usage: "!help [command]", help: "Lists the commands, or explains one." } };
    const one = all[name as keyof typeof all];
    if (name && one) return `${one.usage}\n${one.help}`;
    const networks = this.pools.size > 1 ? `\n\nNetworks: ${[...this.pools.keys()].join(", ")} (say which one after the command).` : "";
    return `Commands:\n${Object.values(all).map((c) => `${c.usage}: ${c.help}`).join("\n")}${networks}`;
  }
}
