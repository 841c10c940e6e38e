/**
 * What a user is told about their connection: a drop that lasts `pool.dropNoticeAfterMs`
 * (short blips say nothing, and a network-wide outage does not become one notice per user at
 * once), and the reconnection after such a drop. The state lives on the puppet, so nothing
 * is allocated per connection here.
 */
import type { NetworkConfig } from "../config/schema.js";
import type { IrcConnection } from "./IrcConnection.js";

export interface DropState {
  dropTimer: NodeJS.Timeout | null;
  toldDrop: boolean;
}

export class ConnectionNotices {
  constructor(
    private readonly network: NetworkConfig,
    private readonly tell: (connection: IrcConnection, text: string) => void,
  ) {}

  dropped(state: DropState, connection: IrcConnection, reason: string): void {
    if (state.dropTimer || state.toldDrop) return;
    state.dropTimer = setTimeout(() => {
      state.dropTimer = null;
      if (connection.state === "connected" || connection.state === "stopped") return;
      state.toldDrop = true;
      this.tell(connection, `Your connection to ${this.network.name} was lost (${reason}); the bridge is reconnecting. Messages you send meanwhile wait and go out once it is back.`);
    }, this.network.pool.dropNoticeAfterMs);
    state.dropTimer.unref();
  }

  restored(state: DropState, connection: IrcConnection, nick: string): void {
    if (state.dropTimer) clearTimeout(state.dropTimer);
    state.dropTimer = null;
    if (state.toldDrop) this.tell(connection, `Reconnected to ${this.network.name} as ${nick}.`);
    state.toldDrop = false;
  }
}
