/**
 * IRC users' Matrix ghosts: the user ID from the network's template, registered once, with
 * the nick as display name (kept in the store so a restart does not set it again).
 */
import type { Bridge, Intent, MembershipCache } from "matrix-appservice-bridge";
import type { BridgeConfig, NetworkConfig } from "../config/schema.js";
import type { CaseMapping } from "../format/casemap.js";
import { isValidNick } from "../format/nick.js";
import { ghostUserId, readTemplate, unescapeLocalpart } from "../format/template.js";
import type { DataStore } from "../store/DataStore.js";

function readyKey(userId: string, nick: string, nameIfNew: boolean): string {
  return `${userId}\u0000${nick}\u0000${nameIfNew}`;
}

export class Ghosts {
  /** Each ghost's intent, by user ID and nick: the promise while it is being prepared, then the intent. */
  private readonly ready = new Map<string, Intent | Promise<Intent>>();

  constructor(
    private readonly bridge: Bridge,
    private readonly store: DataStore,
    private readonly config: BridgeConfig,
    /** The intents' membership cache (the Bridge's): which rooms ghosts joined this run. */
    private readonly membership: Pick<MembershipCache, "getMemberEntry"> | null = null,
  ) {}

  /** Whether a ghost is known to be in a room (joined by the bridge this run). */
  isKnownIn(roomId: string, userId: string): boolean {
    return this.membership?.getMemberEntry(roomId, userId) === "join";
  }

  private get domain(): string {
    return this.config.homeserver.domain;
  }

  /** The network and (casefolded) IRC nick a ghost's user ID stands for, or null if it is not a ghost. */
  parse(userId: string): { networkId: string; nick: string } | null {
    for (const [networkId, network] of Object.entries(this.config.networks)) {
      const escaped = readTemplate("@", network.ghostUserTemplate, "NICK", this.domain, userId);
      const nick = escaped === null ? null : unescapeLocalpart(escaped);
      if (nick && isValidNick(nick)) return { networkId, nick };
    }
    return null;
  }

  userIdFor(network: NetworkConfig, nick: string, mapping?: CaseMapping): string {
    return ghostUserId(network.ghostUserTemplate, nick, this.domain, mapping);
  }

  /** The intent of a ghost known only by its user ID (e.g. one found in a room). */
  intentForUserId(userId: string): Intent {
    return this.bridge.getIntent(userId);
  }

  /**
   * The ghost's intent, registered and named after `nick`. With `nameIfNew`, an existing
   * ghost keeps its name: for nicks read back from a user ID, which are casefolded.
   */
  intentFor(networkId: string, network: NetworkConfig, nick: string, mapping?: CaseMapping, nameIfNew = false): Promise<Intent> {
    let userId: string;
    try {
      userId = this.userIdFor(network, nick, mapping);
    } catch (err) {
      return Promise.reject(err);
    }
    const key = readyKey(userId, nick, nameIfNew);
    const known = this.ready.get(key);
    if (known) return known instanceof Promise ? known : Promise.resolve(known);
    const ready = this.prepare(networkId, userId, nick, nameIfNew);
    this.ready.set(key, ready);
    ready.then(
      (intent) => this.ready.get(key) === ready && this.ready.set(key, intent),
      () => this.ready.get(key) === ready && this.ready.delete(key),
    );
    return ready;
  }

  /**
   * The ghost's intent when intentFor has prepared it for this user ID and nick already: the
   * relay takes it as it is, without waiting on a promise for each line.
   */
  preparedIntent(userId: string, nick: string): Intent | undefined {
    const known = this.ready.get(readyKey(userId, nick, false));
    return known instanceof Promise ? undefined : known;
  }

  private async prepare(networkId: string, userId: string, nick: string, nameIfNew: boolean): Promise<Intent> {
    const intent = this.bridge.getIntent(userId);
    await intent.ensureRegistered();
    const stored = await this.store.getGhost(userId);
    if (stored?.displayName !== nick && !(nameIfNew && stored?.displayName)) {
      await intent.setDisplayName(nick);
      await this.store.upsertGhost({ userId, networkId, nick, displayName: nick });
    }
    return intent;
  }
}
