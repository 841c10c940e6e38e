/**
 * The IRCv3 interactions, put together: reactions, typing and redactions (see each), so the
 * bridge wires one part. Matrix redactions go through `redactions`, a list of small handlers
 * other features may add to.
 */
import type { Intent } from "matrix-appservice-bridge";
import type { BridgeConfig } from "../config/schema.js";
import type { NetworkPool } from "../irc/NetworkPool.js";
import type { MatrixEvent } from "../matrix/DurableAppService.js";
import type { Ghosts } from "../matrix/Ghosts.js";
import type { MessageLinks } from "../store/MessageLinks.js";
import type { KeyedQueue } from "./KeyedQueue.js";
import { Reactions } from "./Reactions.js";
import { LineRedactions, MatrixRedactions } from "./Redactions.js";
import type { RoomLinks } from "./RoomLinks.js";
import { Typing } from "./Typing.js";

export interface Ircv3Deps {
  config: BridgeConfig;
  links: RoomLinks;
  pools: Map<string, NetworkPool>;
  messageLinks: MessageLinks;
  ghosts: Ghosts;
  /** Per-room order of what goes into Matrix. */
  roomQueue: KeyedQueue;
  bot: () => Intent;
  /** Whether a Matrix user's typing may be bridged (a real user allowed to use the bridge). */
  bridgesUser: (userId: string) => boolean;
  /** An event the bridge redacted on IRC's behalf (its media links die). */
  redactedByBridge?: (roomId: string, eventId: string) => Promise<void>;
}

export class Ircv3Interactions {
  readonly reactions: Reactions;
  readonly typing: Typing;
  readonly lineRedactions: LineRedactions;
  readonly redactions = new MatrixRedactions();

  constructor(d: Ircv3Deps) {
    this.reactions = new Reactions(d.config, d.links, d.pools, d.messageLinks, d.ghosts, d.roomQueue);
    this.typing = new Typing(d.config, d.links, d.pools, d.ghosts, d.bridgesUser);
    this.lineRedactions = new LineRedactions(d.config, d.links, d.pools, d.messageLinks, d.ghosts, d.roomQueue, d.bot, d.redactedByBridge);
    this.redactions.add("unreact", (r) => this.reactions.onMatrixRedaction(r));
    this.redactions.add("redact_line", (r) => this.lineRedactions.onMatrixRedaction(r));
  }

  attach(pool: NetworkPool): void {
    this.reactions.attach(pool);
    this.typing.attach(pool);
    this.lineRedactions.attach(pool);
  }

  /** An `m.reaction` in a linked room. */
  onReaction(event: MatrixEvent): Promise<void> {
    return this.reactions.onMatrixReaction(event);
  }

  /** An `m.room.redaction` in any room (each handler picks what concerns it). */
  onRedaction(event: MatrixEvent): Promise<void> {
    return this.redactions.onRedaction(event);
  }

  /** An ephemeral event from the homeserver (typing; never journalled). */
  onEphemeral(event: MatrixEvent): void {
    this.typing.onEphemeral(event);
  }

  stop(): void {
    this.typing.stop();
  }
}
