/**
 * Builds the provisioning parts (the flow, the room command, the bot's PM answers, unlinking)
 * from the bridge's collaborators, so BridgeApp wires them in a few lines. `requests` is the
 * LinkProvisioner the provisioning HTTP API serves.
 */
import type { Intent } from "matrix-appservice-bridge";
import type { BridgeConfig } from "../config/schema.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import type { Ghosts } from "../matrix/Ghosts.js";
import type { Permissions } from "../bridge/Permissions.js";
import type { RoomLinks } from "../bridge/RoomLinks.js";
import type { SecretBox } from "../security/SecretBox.js";
import type { DataStore } from "../store/DataStore.js";
import { OpsListing } from "./ChannelOps.js";
import { LinkRequests } from "./LinkRequests.js";
import { OpAnswers } from "./OpAnswers.js";
import { RoomCommands } from "./RoomCommands.js";
import { RoomSide } from "./RoomSide.js";
import type { LinkProvisioner } from "./types.js";
import { Unlinker } from "./Unlinker.js";

export interface ProvisioningDeps {
  config: BridgeConfig;
  store: DataStore;
  links: RoomLinks;
  pools: Map<string, NetworkPool>;
  permissions: Permissions;
  secrets: SecretBox | null;
  ghosts: Ghosts;
  bot: () => Intent;
  botUserId: string;
  joinedMembers(roomId: string): Promise<string[]>;
  /** The same callback a new portal gets: members, chanops and channel modes sync in. */
  onLinked(pool: NetworkPool, channelName: string): void;
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
