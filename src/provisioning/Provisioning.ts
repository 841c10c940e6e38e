/**
 * Builds the provisioning parts (the flow, the room command, the bot's PM answers, unlinking)
 * from the bridge's collaborators, so BridgeApp wires them in a few lines. `requests` is the
 * LinkProvisioner the provisioning HTTP API serves.
 */
import type { Intent } from "matrix-appservice-bridge";
import type { NetworkPool } from "../irc/NetworkPool.js";
import type { Ghosts } from "../matrix/Ghosts.js";
import { OpsListing } from "./ChannelOps.js";
import { LinkRequests, type LinkRequestDeps } from "./LinkRequests.js";
import { OpAnswers } from "./OpAnswers.js";
import { RoomCommands } from "./RoomCommands.js";
import { RoomSide } from "./RoomSide.js";
import type { LinkProvisioner } from "./types.js";
import { Unlinker } from "./Unlinker.js";

/** What the flow needs (LinkRequestDeps) but the room side and the unlinker, which are made here, and what those need. */
export interface ProvisioningDeps extends Omit<LinkRequestDeps, "room" | "unlinker"> {
  ghosts: Ghosts;
  bot: () => Intent;
  joinedMembers(roomId: string): Promise<string[]>;
}

export class Provisioning {
  readonly requests: LinkRequests;
  /** What people are served (the room command, the HTTP API): `requests`, its operator listings kept a minute. */
  readonly provisioner: LinkProvisioner;
  readonly roomCommands: RoomCommands;
  private readonly answers: OpAnswers;

  constructor(d: ProvisioningDeps) {
    const room = new RoomSide(d.bot);
    const unlinker = new Unlinker(d.links, d.pools, d.ghosts, room, d.joinedMembers);
    this.requests = new LinkRequests({ ...d, room, unlinker });
    this.provisioner = OpsListing.wrap(this.requests);
    this.roomCommands = new RoomCommands(d.config, this.provisioner, room, (userId) => d.permissions.isAdmin(userId));
    this.answers = new OpAnswers(this.requests);
  }

  attach(pool: NetworkPool): void {
    this.requests.attach(pool);
    this.answers.attach(pool);
  }

  /** Re-arms the stored link requests. */
  load(): Promise<void> {
    return this.requests.load();
  }

  stop(): void {
    this.requests.stop();
  }
}
