/**
 * The `!irc` room command, typed in a room the bridge bot was invited to (with the room's
 * members in it: a direct chat with the bot is an admin room instead). `!irc link`, `!irc
 * unlink`, `!irc links`, `!irc help`; the bot answers in the room at each step, and the flow
 * (LinkRequests) tells the outcome there later.
 */
import type { BridgeConfig } from "../config/schema.js";
import { stripReplyFallback } from "../format/replies.js";
import { getLogger } from "../logging.js";
import type { MatrixEvent } from "../matrix/DurableAppService.js";
import { spanOf } from "./LinkRequests.js";
import { parseRoomCommand, ROOM_COMMAND_USAGE } from "./parse.js";
import type { RoomSide } from "./RoomSide.js";
import { ProvisioningError, type LinkProvisioner } from "./types.js";

const log = getLogger("provisioning/room-command");

export class RoomCommands {
  constructor(
    private readonly config: BridgeConfig,
    private readonly provisioner: LinkProvisioner,
    private readonly room: Pick<RoomSide, "notice" | "moderatorStatus">,
    private readonly isAdmin: (userId: string) => boolean = () => false,
  ) {}

  /**
   * The bot was invited to a room with other members in it: with the room command on, it stays
   * and says how to bridge the room (true); else false (the caller tells and leaves, as before).
   */
  async welcome(roomId: string, inviter: string): Promise<boolean> {
    if (!this.config.provisioning.enabled) return false;
    log.info("Invited to a room that may be bridged", { roomId, inviter });
    const networks = Object.keys(this.config.networks).join(", ");
    await this.room.notice(roomId, `Hello! I am the IRC bridge bot. A moderator of this room can bridge it to an IRC channel (networks: ${networks}), with a channel operator's approval:\n${ROOM_COMMAND_USAGE}`);
    return true;
  }

  /** An `!irc ...` message in a room (not an admin room). */
  async onMessage(event: MatrixEvent): Promise<void> {
    if (!this.config.provisioning.enabled) return;
    const roomId = event.room_id as string;
    const userId = event.sender as string;
    const body = (event.content as { body?: unknown } | undefined)?.body;
    if (typeof body !== "string") return;
    const command = parseRoomCommand(stripReplyFallback(body));
    if (!command) return;
    let reply: string | null;
    try {
      reply = await this.run(command, roomId, userId);
    } catch (err) {
      if (!(err instanceof ProvisioningError)) log.warn("A room command failed", { roomId, userId, error: (err as Error).message });
      reply = `${userId}: ${(err as Error).message}.`;
    }
    if (reply) await this.room.notice(roomId, reply);
  }

  private async run(command: NonNullable<ReturnType<typeof parseRoomCommand>>, roomId: string, userId: string): Promise<string | null> {
    switch (command.kind) {
      case "help":
        return ROOM_COMMAND_USAGE;
      case "invalid":
        return command.message;
      case "links": {
        const links = this.provisioner.listLinks(roomId);
        if (links.length === 0) return "This room is not linked to any IRC channel.";
        const name = (id: string) => this.config.networks[id]?.name ?? id;
        return `This room is linked to: ${links.map((l) => `${l.channel} on ${name(l.networkId)} (${l.origin})`).join(", ")}.`;
      }
      case "unlink":
        // The unlink itself tells the room.
        await this.provisioner.unlink({ networkId: this.networkOf(command.networkId), channel: command.channel, roomId, userId });
        return null;
      case "link": {
        const networkId = this.networkOf(command.networkId);
        if (!command.opNick && !command.noApproval) {
          // Listing asks IRC (a WHO): only those who may link the room make the bridge ask.
          await this.checkModerator(roomId, userId);
          const ops = await this.provisioner.channelOps(networkId, command.channel);
          const usage = `!irc link ${networkId} ${command.channel} <op nick>`;
          if (ops.length === 0) return `Nobody holds operator status (+o) in ${command.channel} now, or the channel does not exist: a link needs an operator's approval.`;
          return `Operators of ${command.channel} now: ${ops.join(", ")}. Ask one of them to approve with ${usage}.`;
        }
        const outcome = await this.provisioner.requestLink({ networkId, channel: command.channel, roomId, userId, opNick: command.opNick, noApproval: command.noApproval });
        if (outcome.status === "linked") return null; // the flow said so in the room
        return `I asked ${outcome.opNick} on IRC, by private message, to approve bridging this room to ${command.channel}; they have ${spanOf(outcome.expiresAt - Date.now())} to answer. I will say here what they answer.`;
      }
    }
  }

  private async checkModerator(roomId: string, userId: string): Promise<void> {
    if (this.isAdmin(userId)) return;
    const status = await this.room.moderatorStatus(roomId, userId).catch(() => "unreadable" as const);
    if (status !== "ok") throw new ProvisioningError("IRC_NOT_ENOUGH_POWER", `only a moderator of this room (who may change its power levels) may ask who the channel's operators are`, 403);
  }

  /** The network named, or the only one. */
  private networkOf(networkId: string | null): string {
    if (networkId) return networkId;
    const ids = Object.keys(this.config.networks);
    if (ids.length === 1) return ids[0];
    throw new ProvisioningError("IRC_UNKNOWN_NETWORK", `which network? Say it after the verb, e.g. !irc link ${ids[0]} #channel (networks: ${ids.join(", ")})`, 400);
  }
}
