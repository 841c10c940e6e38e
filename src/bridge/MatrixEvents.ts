/**
 * Where each Matrix event from a real user goes: messages and membership of linked rooms to
 * the IRC side, topics to TopicSync, kicks of ghosts to Moderation, invites of ghosts and
 * messages in PM rooms to PrivateMessages. Events from the bridge's own users are ignored
 * (they are its own echoes).
 */
import { isBridgeCommand } from "../format/matrixContent.js";
import type { MatrixEvent } from "../matrix/DurableAppService.js";
import type { AdminRooms } from "./admin/AdminRooms.js";
import { SCRUBBED } from "./admin/secrets.js";
import type { Permissions } from "./Permissions.js";
import { RateLimiter } from "./RateLimiter.js";
import type { MatrixToIrc } from "./MatrixToIrc.js";
import type { Moderation } from "./Moderation.js";
import type { PrivateMessages } from "./PrivateMessages.js";
import type { RoomLinks } from "./RoomLinks.js";
import type { TopicSync } from "./TopicSync.js";
import type { PowerToModes } from "./PowerToModes.js";

export interface MatrixEventTargets {
  botUserId: string;
  permissions: Permissions;
  admin: AdminRooms;
  notice(roomId: string, text: string): Promise<void>;
  isBridgeUser(userId: string): boolean;
  links: RoomLinks;
  matrixToIrc: MatrixToIrc;
  topics: TopicSync;
  moderation: Moderation;
  pms: PrivateMessages;
  /** Power level changes by Matrix users → IRC modes (when the network allows it). */
  powerToModes: PowerToModes;
  /** The bridge bot joins a room it was invited to. */
  botJoin(roomId: string): Promise<void>;
  /** IRCv3 interactions: reactions (linked rooms) and redactions (any room: each handler picks its own). */
  interactions: { onReaction(event: MatrixEvent): Promise<void>; onRedaction(event: MatrixEvent): Promise<void> };
  /** A user acted in a linked room: notices about their connection go there. */
  usedRoom(userId: string, roomId: string): void;
  /** `!irc ...` typed in a room that is not an admin room (provisioning's room command). */
  roomCommands?: { onMessage(event: MatrixEvent): Promise<void> };
  /** Someone removed the bot from a linked room (its moderators' links then end). */
  botRemoved?(roomId: string, by: string): Promise<void>;
  /** A redaction by a real user in any room but admin rooms (media links of the event die). */
  onMediaRedaction?(event: MatrixEvent): Promise<void>;
}

interface MemberContent {
  membership?: string;
  reason?: string;
}

export class MatrixEvents {
  /** Users not allowed to use the bridge who were told so: once per run, in a bounded map (strangers are many). */
  private readonly toldNotAllowed = new RateLimiter({ burst: 1, perMinute: 1 });

  constructor(private readonly t: MatrixEventTargets) {}

  async handle(event: MatrixEvent): Promise<void> {
    const sender = event.sender as string | undefined;
    const roomId = event.room_id;
    if (!sender || !roomId || this.t.isBridgeUser(sender)) return;
    const linked = this.t.links.channelsOf(roomId).length > 0;
    // Before the permission check: a moderator the bridge does not serve may still delete a file.
    if (event.type === "m.room.redaction" && this.t.onMediaRedaction && !this.t.admin.isAdminRoom(roomId)) await this.t.onMediaRedaction(event);
    if (!this.t.permissions.mayUse(sender)) return this.refuse(event, roomId, sender, linked);
    if (this.t.admin.isAdminRoom(roomId)) {
      if (event.type === "m.room.message") return this.t.admin.onMessage(event);
      if (event.type === "m.room.member" && (event.content as MemberContent | undefined)?.membership === "leave") {
        return this.t.admin.onLeave(roomId, event.state_key as string);
      }
      return;
    }
    // A journal copy without its secret (see admin/secrets.ts) is a command, never a chat line.
    if ((event.content as Record<string, unknown> | undefined)?.[SCRUBBED]) return;
    switch (event.type) {
      case "m.room.member":
        return this.onMember(event, roomId, sender, linked);
      case "m.room.power_levels":
        if (linked && event.state_key === "") await this.t.powerToModes.onPowerLevels(event);
        return;
      case "m.room.topic":
        if (linked && event.state_key === "") await this.t.topics.onMatrixTopic(event);
        return;
      case "m.reaction":
        if (linked) await this.t.interactions.onReaction(event);
        return;
      case "m.room.redaction":
        return this.t.interactions.onRedaction(event);
      case "m.room.message":
      case "m.sticker": {
        const command = event.type === "m.room.message" && this.t.roomCommands && isBridgeCommand((event.content ?? {}) as Record<string, unknown>);
        if (linked) {
          if (command) return this.t.roomCommands!.onMessage(event);
          this.t.usedRoom(sender, roomId);
          return this.t.matrixToIrc.onMessage(event);
        }
        const pm = await this.t.pms.pmRoomOf(roomId);
        if (pm) await this.t.pms.onMatrixMessage(event, pm);
        else if (command) await this.t.roomCommands!.onMessage(event);
        return;
      }
    }
  }

  /** Someone the config does not allow: nothing of theirs is bridged, and they hear why once. */
  private async refuse(event: MatrixEvent, roomId: string, sender: string, linked: boolean): Promise<void> {
    const invitedBot = event.type === "m.room.member" && event.state_key === this.t.botUserId && (event.content as MemberContent | undefined)?.membership === "invite";
    if (invitedBot && !linked) return this.t.admin.onBotInvited(roomId, sender);
    if ((event.type !== "m.room.message" && event.type !== "m.sticker") || !linked || !this.toldNotAllowed.shouldTell(sender, Infinity)) return;
    await this.t.notice(roomId, `${sender}: you are not allowed to use this bridge, so your messages here are not sent to IRC.`);
  }

  private async onMember(event: MatrixEvent, roomId: string, sender: string, linked: boolean): Promise<void> {
    const target = event.state_key as string;
    const { membership, reason } = (event.content ?? {}) as MemberContent;
    const previous = (event.unsigned as { prev_content?: MemberContent } | undefined)?.prev_content?.membership;
    const targetIsGhost = target !== this.t.botUserId && this.t.isBridgeUser(target);
    if (membership === "invite") {
      if (target === this.t.botUserId) await (linked ? this.t.botJoin(roomId) : this.t.admin.onBotInvited(roomId, sender));
      else if (targetIsGhost && !linked) await this.t.pms.onGhostInvited(roomId, sender, target);
      return;
    }
    if (!linked) return;
    if (membership === "join" && target === sender && previous !== "join") {
      this.t.usedRoom(sender, roomId);
      await this.t.matrixToIrc.onJoin(roomId, sender);
    } else if ((membership === "leave" || membership === "ban") && previous === "join") {
      if (targetIsGhost) {
        if (sender !== target) await this.t.moderation.onGhostRemoved(roomId, sender, target, reason);
      } else if (target === this.t.botUserId) {
        if (sender !== target) await this.t.botRemoved?.(roomId, sender);
      } else {
        const why = target === sender ? "Left the Matrix room" : `${membership === "ban" ? "Banned" : "Kicked"} in Matrix by ${sender}${reason ? `: ${reason}` : ""}`;
        this.t.matrixToIrc.onLeave(roomId, target, why);
      }
    }
  }
}
