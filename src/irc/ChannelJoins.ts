/**
 * The channels of one connection: those it should be in (rejoined after every reconnect, with
 * their keys), those the server confirmed, and the JOINs waiting for their answer. A join
 * ends with the server's JOIN or with a join numeric from the numerics table, never a blind
 * timeout for answers the IRC library does not map.
 */
import type { Client } from "irc-framework";
import { getLogger } from "../logging.js";
import { IrcFailure } from "./errors.js";
import { exchange } from "./exchange.js";
import type { IrcWriter } from "./IrcWriter.js";
import { explainNumeric, NUMERIC_EVENT, type NumericReply } from "./numerics.js";

const log = getLogger("irc/joins");

/** What the joins need of their connection. */
export interface JoinsOwner {
  casefold(name: string): string;
  isSelf(nick: string): boolean;
  readonly state: string;
  readonly options: { networkId: string; networkName: string; connectTimeoutMs: number };
}

export class ChannelJoins {
  /** Channels this connection should be in (casefolded → name and key), rejoined on reconnect. */
  private readonly wanted = new Map<string, { name: string; key: string | null }>();
  private readonly joined = new Set<string>();
  /** JOINs waiting for their answer (casefolded channel → the attempt); made at the first JOIN. */
  private joining: Map<string, Promise<void>> | null = null;

  constructor(
    private readonly owner: JoinsOwner,
    private readonly client: Client,
    private readonly writer: IrcWriter,
  ) {}

  /** Channels the server has confirmed we are in (casefolded). */
  get channels(): string[] {
    return [...this.joined];
  }

  isJoined(channel: string): boolean {
    return this.joined.has(this.owner.casefold(channel));
  }

  /** Marks a channel to be joined at every (re)connect, without joining now. */
  want(name: string, key: string | null = null): void {
    this.wanted.set(this.owner.casefold(name), { name, key });
  }

  /** Joins a channel; resolves when the server confirms, rejects with its reason. */
  join(name: string, key: string | null, timeoutMs = this.owner.options.connectTimeoutMs): Promise<void> {
    const folded = this.owner.casefold(name);
    this.wanted.set(folded, { name, key });
    if (this.joined.has(folded)) return Promise.resolve();
    // One JOIN in flight per channel: a second one would get no answer from the server.
    const pending = (this.joining ??= new Map());
    let joining = pending.get(folded);
    if (!joining) {
      joining = exchange<true>(
        this.client,
        `joining ${name}`,
        ["join", NUMERIC_EVENT],
        (event, e) => {
          if (event === "join") return this.owner.isSelf(e.nick) && this.owner.casefold(e.channel) === folded ? true : undefined;
          const reply = e as NumericReply;
          if (reply.meaning?.role !== "join" || this.owner.casefold(reply.target) !== folded) return undefined;
          if (reply.meaning.fatal) this.wanted.delete(folded);
          throw new IrcFailure(reply.meaning.name.toLowerCase(), `cannot join ${name}: ${explainNumeric(reply, this.owner.options.networkName)}`, reply.meaning.fatal);
        },
        () => this.writer.send("JOIN", key ? [name, key] : [name]),
        timeoutMs,
      )
        .then(
          () => undefined,
          (err: IrcFailure) => {
            throw err.code === "timeout" ? new IrcFailure("join_timeout", err.message) : err;
          },
        )
        .finally(() => {
          pending.delete(folded);
          // Nothing in flight: the map goes too (memory counts per puppet).
          if (pending.size === 0 && this.joining === pending) this.joining = null;
        });
      pending.set(folded, joining);
    }
    return joining;
  }

  /** Whether the channel is to be joined (and rejoined after reconnects). */
  wants(channel: string): boolean {
    return this.wanted.has(this.owner.casefold(channel));
  }

  /** Leaves a channel (and stops rejoining it after reconnects). */
  part(name: string, message: string): void {
    const folded = this.owner.casefold(name);
    this.wanted.delete(folded);
    // Parted while its JOIN is on the way: leave once the server has let us in, unless it is wanted again by then.
    const inFlight = this.joining?.get(folded);
    if (inFlight) {
      inFlight.then(() => !this.wanted.has(folded) && this.part(name, message), () => undefined);
      return;
    }
    if (this.owner.state !== "connected" || !this.joined.has(folded)) return;
    this.writer.send("PART", [name], message).catch((err: Error) => log.warn("Could not part", { network: this.owner.options.networkId, channel: name, error: err.message }));
  }

  /** The server says we joined (`true`) or left a channel. */
  onSelf(channel: string, inside: boolean): void {
    const folded = this.owner.casefold(channel);
    if (inside) this.joined.add(folded);
    else this.joined.delete(folded);
  }

  /** We were kicked: the channel is no longer wanted. Returns the key it was joined with. */
  onKicked(channel: string): string | null {
    const folded = this.owner.casefold(channel);
    const key = this.wanted.get(folded)?.key ?? null;
    this.joined.delete(folded);
    this.wanted.delete(folded);
    return key;
  }

  /** The connection closed: nothing is joined any more (what is wanted stays). */
  onClosed(): void {
    this.joined.clear();
  }

  /** After a (re)connect: joins every wanted channel again. */
  rejoinAll(): void {
    for (const { name, key } of this.wanted.values()) {
      this.join(name, key).catch((err: IrcFailure) => {
        // A JOIN the server has not answered yet (its flood control may be holding it) stays
        // wanted: a late answer still counts, and the next reconnect tries again.
        if (err.code === "join_timeout") log.info("Rejoin not answered yet; still wanted", { network: this.owner.options.networkId, channel: name });
        else log.warn("Rejoin failed", { network: this.owner.options.networkId, channel: name, error: err.message });
      });
    }
  }
}
