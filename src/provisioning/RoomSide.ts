/**
 * What provisioning needs of a Matrix room, through the bridge bot: whether a user may
 * moderate it (joined, with the power to change its power levels), its name, notices, and the
 * state events that record a link (`m.room.bridging` for the request's progress, `m.bridge`
 * once linked). State events are best effort: the bot may lack the power to send them in a
 * room of its moderators, and the link works without them. Sends go through the bot's client,
 * not its Intent: the Intent joins a room before sending, which would put a bot that was just
 * kicked straight back into a public room.
 */
import type { Intent } from "matrix-appservice-bridge";
import { getLogger } from "../logging.js";
import { readStateEvent } from "../matrix/readState.js";

const log = getLogger("provisioning/room");

export type BridgingStatus = "pending" | "success" | "failure";

interface PowerLevels {
  users?: Record<string, number>;
  users_default?: number;
  events?: Record<string, number>;
  state_default?: number;
}

/** The spec's defaults when the room has no power levels event (the creator alone is 100). */
const DEFAULT_STATE_LEVEL = 50;

/**
 * Whether `userId` may change the room's power levels: room version 12+ creators always may;
 * otherwise their level (or users_default) reaches the level m.room.power_levels needs.
 */
export function mayChangePowerLevels(levels: PowerLevels | null, userId: string, creators: ReadonlySet<string>, creatorsOutrank: boolean): boolean {
  if (creatorsOutrank && creators.has(userId)) return true;
  if (!levels) return creators.has(userId);
  const have = levels.users?.[userId] ?? levels.users_default ?? 0;
  const need = levels.events?.["m.room.power_levels"] ?? levels.state_default ?? DEFAULT_STATE_LEVEL;
  return have >= need;
}

export class RoomSide {
  constructor(private readonly bot: () => Intent) {}

  /** The bot joins the room (invited, or a public room); rejects when it cannot. */
  async join(roomId: string): Promise<void> {
    await this.bot().join(roomId);
  }

  /**
   * Whether the bot is in the room now: its own membership says "join". (Any state read is not
   * enough: Synapse still answers one who left with the state as of their leave.)
   */
  async botIsIn(roomId: string): Promise<boolean> {
    const bot = this.bot();
    return (await readStateEvent<{ membership?: string }>(bot, roomId, "m.room.member", bot.userId))?.membership === "join";
  }

  /** "ok", or why not: the user is not joined, or lacks the power. */
  async moderatorStatus(roomId: string, userId: string): Promise<"ok" | "not_joined" | "no_power"> {
    const events = (await this.bot().matrixClient.getRoomState(roomId)) as { type: string; sender: string; state_key: string; content?: Record<string, unknown> }[];
    const find = (type: string, key = "") => events.find((e) => e.type === type && e.state_key === key);
    if (find("m.room.member", userId)?.content?.membership !== "join") return "not_joined";
    const create = find("m.room.create");
    const more = create?.content?.additional_creators;
    const creators = new Set<string>([...(create ? [create.sender] : []), ...(Array.isArray(more) ? more.filter((u): u is string => typeof u === "string") : [])]);
    const version = Number(create?.content?.room_version ?? "1");
    const levels = (find("m.room.power_levels")?.content ?? null) as PowerLevels | null;
    return mayChangePowerLevels(levels, userId, creators, Number.isFinite(version) && version >= 12) ? "ok" : "no_power";
  }

  /** The room's name, else its canonical alias, else its ID. */
  async nameOf(roomId: string): Promise<string> {
    const bot = this.bot();
    const name = await readStateEvent<{ name?: unknown }>(bot, roomId, "m.room.name");
    if (typeof name?.name === "string" && name.name.trim()) return name.name.trim();
    const alias = await readStateEvent<{ alias?: unknown }>(bot, roomId, "m.room.canonical_alias");
    return typeof alias?.alias === "string" ? alias.alias : roomId;
  }

  async notice(roomId: string, text: string): Promise<void> {
    await this.bot()
      .matrixClient.sendMessage(roomId, { msgtype: "m.notice", body: text })
      .catch((err: Error) => log.warn("Could not tell a room about its link", { roomId, error: err.message }));
  }

  /** `m.room.bridging` (state key `irc://<network>/<#channel>`): where the request stands. */
  async bridging(roomId: string, networkId: string, channelName: string, status: BridgingStatus, userId: string, reason?: string): Promise<void> {
    const content = { bridger: userId, status, remote: { protocol: "irc", network: networkId, channel: channelName }, ...(reason ? { reason } : {}) };
    await this.state(roomId, "m.room.bridging", `irc://${networkId}/${channelName}`, content);
  }

  /** `m.bridge` (MSC2346), as portals have it; `null` network name clears it (unlinked). */
  async bridgeInfo(roomId: string, networkId: string, networkName: string | null, channelName: string, userId: string): Promise<void> {
    const content =
      networkName === null
        ? {}
        : {
            bridgebot: this.bot().userId,
            creator: userId,
            protocol: { id: "irc", displayname: "IRC" },
            network: { id: networkId, displayname: networkName },
            channel: { id: channelName, displayname: channelName },
          };
    await this.state(roomId, "m.bridge", `irc/${networkId}/${channelName}`, content);
  }

  async leave(roomId: string): Promise<void> {
    await this.bot()
      .leave(roomId)
      .catch((err: Error) => log.warn("The bot could not leave an unlinked room", { roomId, error: err.message }));
  }

  private async state(roomId: string, type: string, stateKey: string, content: Record<string, unknown>): Promise<void> {
    await this.bot()
      .matrixClient.sendStateEvent(roomId, type, stateKey, content)
      .catch((err: Error) => log.info("Could not set a bridge state event (the bot may lack the power)", { roomId, type, error: err.message }));
  }
}
