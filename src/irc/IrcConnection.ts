/**
 * One IRC connection (the bridge bot's or a Matrix user's puppet), wrapping irc-framework:
 * registration with a nick fallback, joins that resolve or fail with the server's reason,
 * paced sends, and reconnection with jittered exponential backoff that rejoins channels.
 */
import { EventEmitter } from "node:events";
import { casefold, parseCaseMapping, type CaseMapping } from "../format/casemap.js";
import { getLogger } from "../logging.js";
import { SendPacer } from "./SendPacer.js";
import { IrcFailure } from "./errors.js";
import { classifyCloseReason } from "./ConnectScheduler.js";
import type { ConnectionState, IrcConnectionEvents, IrcConnectionOptions, IrcMessage, IrcMessageKind } from "./connectionTypes.js";
import { BridgeClient } from "./BridgeClient.js";
import { linkWatch, type LinkWatch } from "./LinkWatch.js";
import { ReconnectBackoff } from "./ReconnectBackoff.js";
import { IrcTransport } from "./IrcTransport.js";
import { foldsToItself } from "./lineFilter.js";
import { EchoTracker } from "./EchoTracker.js";
import { register } from "./register.js";
import { exchange } from "./exchange.js";
import { ServerCommands } from "./ServerCommands.js";
import { IrcWriter, oneLine } from "./IrcWriter.js";
import { REDACTION_CAP } from "./ircv3Events.js";
import { ChannelJoins } from "./ChannelJoins.js";
import { chanTypesOf, parsePrefix } from "../format/prefix.js";
import { explainNumeric, NUMERIC_EVENT, type NumericReply } from "./numerics.js";
import { emitPlainMessage, type PlainMessageClient } from "./plainMessage.js";

const log = getLogger("irc/connection");

export type { ConnectionState, IrcConnectionEvents, IrcConnectionOptions, IrcMessage, IrcMessageKind, IrcRedaction, IrcTagMessage, RawMembership } from "./connectionTypes.js";

/** How long a link check (PING) may wait for its PONG. */
const LINK_CHECK_TIMEOUT_MS = 10_000;

export class IrcConnection extends EventEmitter<IrcConnectionEvents> {
  state: ConnectionState = "idle";
  private readonly client: BridgeClient;
  private readonly pacer: SendPacer;
  /** The only way lines reach the server (see IrcWriter). */
  readonly writer: IrcWriter;
  /** The channels it should be in and is in. */
  private readonly channels: ChannelJoins;
  private connecting: Promise<void> | null = null;
  private readonly backoff = new ReconnectBackoff();
  /**
   * Why the socket closed, from the close itself: the server's ERROR line or a socket error
   * of this attempt (never an older numeric, such as a 474 from one channel).
   */
  private closeReason = "";
  /** Set when registration was refused for good (464, 465, ...): no reconnect. */
  private refusedFor: string | null = null;
  /** When the socket last delivered anything (IrcTransport sets it; LinkWatch reads it). */
  heardAt = 0;
  private readonly watch: LinkWatch;
  // Made on first use: most puppets never need them (memory counts per puppet).
  private serverCommands: ServerCommands | null = null;
  private echoTracker: EchoTracker | null = null;

  constructor(readonly options: IrcConnectionOptions) {
    super();
    this.watch = options.linkWatch ?? linkWatch;
    this.pacer = new SendPacer(options.sendRate.burst, options.sendRate.linesPerSecond);
    this.client = new BridgeClient({
      host: options.host,
      port: options.port,
      tls: options.tls,
      rejectUnauthorized: options.rejectUnauthorized,
      nick: options.nick,
      username: options.username,
      // irc-framework writes the realname into USER itself: flattened here, like any text.
      gecos: oneLine(options.realname),
      auto_reconnect: false,
      version: null,
      message_max_length: 400,
      // Liveness is LinkWatch's: one timer for every connection instead of two per connection.
      ping_interval: 0,
      ping_timeout: 0,
      enable_echomessage: true,
      ...(options.localAddress ? { outgoing_addr: options.localAddress } : {}),
      // Every line from the server comes through our transport: bounded, checked, isolated.
      transport: IrcTransport,
      // The transport's and BridgeClient's events are about this connection.
      listener: this,
    });
    // Taking back lines (REDACT), wherever the server offers it; irc-framework asks for the
    // rest (message-tags, server-time, echo-message, ...) and requests only what is offered.
    this.client.requestCap(REDACTION_CAP);
    this.writer = new IrcWriter(this.client, this.pacer);
    this.channels = new ChannelJoins(this, this.client, this.writer);
  }

  /** Topic, kick, nick, WHOIS and raw commands, with the server's answers. */
  get commands(): ServerCommands {
    return (this.serverCommands ??= new ServerCommands(this.client, this.writer, this, this.options.connectTimeoutMs));
  }

  private get echoes(): EchoTracker {
    return (this.echoTracker ??= new EchoTracker(this, () => this.checkLink()));
  }

  get nick(): string {
    return this.client.user.nick;
  }

  /** Whether a quiet connection should pass every line for now (see IrcTransport). */
  get hearsAll(): boolean {
    return (this.serverCommands?.listening ?? 0) > 0;
  }

  /** The server's CASEMAPPING (rfc1459 until it says otherwise). */
  get caseMapping(): CaseMapping {
    return parseCaseMapping(this.client.network.options.CASEMAPPING as string | undefined);
  }

  /** The server's prefix modes (ISUPPORT PREFIX), highest first, e.g. "qaohv". */
  get prefixModes(): string {
    return parsePrefix(this.client.network.options.PREFIX);
  }

  /** The server's channel prefixes (CHANTYPES), e.g. "#&". */
  get chanTypes(): string {
    return chanTypesOf(this.client.network.options.CHANTYPES);
  }

  casefold(name: string): string {
    // Per line (targets, nicks): most names are folded already, and need no regex pass.
    return foldsToItself(name) ? name : casefold(name, this.caseMapping);
  }

  /** Our end's port and the server's, for ident (RFC 1413) lookups. */
  get ports(): { local: number; remote: number } | null {
    const socket = (this.client as unknown as { connection?: { transport?: { socket?: { localPort?: number; remotePort?: number } } } })
      .connection?.transport?.socket;
    return socket?.localPort && socket.remotePort ? { local: socket.localPort, remote: socket.remotePort } : null;
  }

  /** Channels the server has confirmed we are in (casefolded). */
  get joinedChannels(): string[] {
    return this.channels.channels;
  }

  /**
   * Whether a channel line from `nick` was said by a puppet of ours on another connection (not
   * the bot's or the canary's lines): the bridge relays none of them, and the sender's own
   * connection reads the line as its echo. The same map the relay checks (NetworkPool.isOwnNick).
   */
  sentByAnotherPuppet(nick: string): boolean {
    const nicks = this.options.puppetNicks;
    if (nicks === undefined || nicks.size === 0) return false;
    const owner = nicks.get(this.casefold(nick));
    return owner != null && owner !== this.options.owner;
  }

  /** Never true of its own lines: their echo confirms them, whoever delivered them. */
  deliveredElsewhere(sender: string, target: string, msgid: string): boolean {
    return this.options.channelLineSeen !== undefined && !this.isSelf(sender) && this.options.channelLineSeen(this.casefold(target), msgid);
  }

  plainMessage(line: string): boolean {
    return emitPlainMessage(this.client as unknown as PlainMessageClient, line);
  }

  /** Whether `nick` is this connection's own (cheap length check first: this runs per line). */
  isSelf(nick: string): boolean {
    const own = this.client.user.nick;
    return nick.length === own.length && (nick === own || this.casefold(nick) === this.casefold(own));
  }

  isJoined(channel: string): boolean {
    return this.channels.isJoined(channel);
  }

  // What BridgeClient's event table (clientEvents) tells the connection; not for other callers.

  /** @internal One of our own lines came back (echo-message). */
  onOwnEcho(target: string, msgid: string | null): void {
    this.echoTracker?.onEcho(target, msgid);
  }

  /** @internal The server says we joined (`true`) or left a channel. */
  onOwnMembership(channel: string, inside: boolean): void {
    this.channels.onSelf(channel, inside);
  }

  /** @internal We were kicked: the key the channel was joined with. */
  onOwnKick(channel: string): string | null {
    return this.channels.onKicked(channel);
  }

  /** @internal Why the socket is closing. */
  onCloseReason(reason: string): void {
    this.closeReason = reason;
  }

  /** @internal A numeric reply from the server: to whoever waits for one, and refused lines to their senders. */
  onNumeric(reply: NumericReply): void {
    if (reply.meaning?.role === "send" && reply.target) this.echoTracker?.onRefused(reply.target, new IrcFailure(reply.meaning.name.toLowerCase(), explainNumeric(reply, this.options.networkName), reply.meaning.fatal));
    this.client.emit(NUMERIC_EVENT, reply);
  }

  /** Connects and registers; resolves once the server has welcomed us. */
  connect(): Promise<void> {
    if (this.state === "connected") return Promise.resolve();
    if (this.state === "stopped") return Promise.reject(new IrcFailure("stopped", "The connection has been shut down"));
    this.connecting ??= this.options.scheduler
      .run(() => (this.state === "stopped" ? Promise.reject(new IrcFailure("stopped", "The connection has been shut down")) : this.attemptConnect()))
      .catch((err: IrcFailure) => {
        // A failed attempt retries even when its socket never closed (a server that accepted
        // TCP and went silent): the close is not the only way back.
        if (!err.fatal && this.options.reconnect && this.state !== "stopped" && this.state !== "connected") this.scheduleReconnect();
        throw err;
      })
      .finally(() => {
        this.connecting = null;
      });
    return this.connecting;
  }

  /** Resolves once connected; rejects after `timeoutMs`, or at once if the connection is stopped or refused for good. */
  whenConnected(timeoutMs: number): Promise<void> {
    if (this.state === "connected") return Promise.resolve();
    if (this.state === "stopped") return Promise.reject(new IrcFailure("stopped", "the IRC connection was closed"));
    if (this.state === "idle") void this.connect().catch(() => undefined);
    return new Promise<void>((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        this.off("registered", onUp);
        this.off("fatal", onFatal);
      };
      const onUp = () => {
        cleanup();
        resolve();
      };
      const onFatal = (reason: string) => {
        cleanup();
        reject(new IrcFailure("refused", reason, true));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new IrcFailure("still_disconnected", `still not reconnected to IRC after ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.on("registered", onUp);
      this.on("fatal", onFatal);
    });
  }

  private async attemptConnect(): Promise<void> {
    this.state = "connecting";
    this.closeReason = "";
    this.refusedFor = null;
    const credentials = this.options.credentials?.(this) ?? null;
    let loggedIn: boolean;
    try {
      ({ loggedIn } = await register(this.client, this.writer, {
        nick: this.options.nick,
        username: this.options.username,
        credentials,
        timeoutMs: this.options.connectTimeoutMs,
        server: `${this.options.host}:${this.options.port}`,
        lastError: () => this.closeReason,
      }));
    } catch (err) {
      if (err instanceof IrcFailure && err.fatal) {
        this.refusedFor = err.message;
        // The server may keep the socket open after refusing us; the close decides the rest.
        if (this.client.connected) this.writer.quit("Refused");
        else this.onClosed();
      }
      throw err;
    }
    // quit() may have been called while registering (TypeScript cannot see that across the await).
    if ((this.state as ConnectionState) === "stopped") {
      // Leave now rather than live on as a zombie.
      this.writer.quit("Stopped");
      throw new IrcFailure("stopped", "The connection has been shut down");
    }
    this.state = "connected";
    this.backoff.reset();
    this.heardAt = Date.now();
    this.watch.add(this);
    log.info("Registered", { network: this.options.networkId, nick: this.nick, saslLoggedIn: loggedIn });
    // Without SASL (the server does not offer it), services take the password by message.
    if (credentials && !loggedIn) {
      this.writer.send("PRIVMSG", ["NickServ"], `IDENTIFY ${credentials.account} ${credentials.password}`).catch((err: Error) => log.warn("Could not identify to NickServ", { network: this.options.networkId, error: err.message }));
    }
    this.emit("registered", this.nick);
    this.channels.rejoinAll();
  }

  /** @internal The socket closed. */
  onClosed(): void {
    const wasConnected = this.state === "connected";
    this.watch.delete(this);
    this.channels.onClosed();
    this.pacer.clear(new IrcFailure("disconnected", "the IRC connection was lost"));
    this.echoTracker?.clear();
    this.writer.setSelf(null);
    if (this.state === "stopped") return;
    this.state = "disconnected";
    if (wasConnected) {
      log.warn("Disconnected", { network: this.options.networkId, nick: this.nick, reason: this.closeReason || undefined });
      this.emit("disconnected", this.closeReason || "connection closed");
    }
    const reason = this.refusedFor ?? this.closeReason;
    const kind = this.refusedFor !== null ? "fatal" : classifyCloseReason(this.closeReason);
    if (kind === "fatal") {
      log.error("Server refused the connection for good; not reconnecting", { network: this.options.networkId, nick: this.options.nick, reason });
      this.state = "stopped";
      this.emit("fatal", reason);
      return;
    }
    if (kind === "throttled") this.options.scheduler.throttle();
    // Every non-fatal close of a wanted connection retries, its first connect included.
    if (this.options.reconnect) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.state === "stopped") return;
    const next = this.backoff.schedule(() =>
      this.connect().catch((err: IrcFailure) => {
        if (err.fatal) log.error("Not reconnecting after a fatal answer", { network: this.options.networkId, error: err.message });
        else if (this.state !== "stopped" && this.state !== "connected") this.scheduleReconnect();
      }),
    );
    if (!next) return;
    log.info("Reconnecting", { network: this.options.networkId, nick: this.options.nick, ...next });
    this.emit("reconnecting", next);
  }

  /**
   * Asks the server for a PONG: true when it answers in time. A link that does not is dropped
   * now (it would only be noticed at the next ping timeout, minutes later), so what was
   * waiting on it is sent again after the reconnect.
   */
  private async checkLink(): Promise<boolean> {
    if (this.state !== "connected") return false;
    const token = `bridge-${Date.now().toString(36)}`;
    try {
      await exchange(this.client, "checking the link", ["pong"], (_, e) => (e.message === token ? true : undefined), () => this.writer.send("PING", [token]), LINK_CHECK_TIMEOUT_MS);
      return true;
    } catch (err) {
      log.warn("The IRC link is silent; dropping it to reconnect", { network: this.options.networkId, nick: this.nick, error: (err as Error).message });
      this.closeReason = "the link stopped answering";
      this.writer.abort();
      return false;
    }
  }

  /** @internal LinkWatch: nothing heard for a while, so the server is asked for a sign of life. */
  keepAlive(): void {
    this.writer.send("PING", ["keepalive"]).catch(() => undefined);
  }

  /** @internal LinkWatch: nothing heard for too long; the link is dropped and reconnects. */
  silentFor(ms: number): void {
    this.closeReason = `Ping timeout (${Math.round(ms / 1000)} seconds)`;
    log.warn("The IRC link is silent; dropping it to reconnect", { network: this.options.networkId, nick: this.nick, silentMs: ms });
    this.writer.abort();
  }

  /** The same check, asked from outside (the canary missed a probe this connection should have delivered). */
  verifyLink(): Promise<boolean> {
    return this.checkLink();
  }

  /** Marks a channel to be joined at every (re)connect, without joining now. */
  want(name: string, key: string | null = null): void {
    this.channels.want(name, key);
  }

  /** Joins a channel; resolves when the server confirms, rejects with its reason. */
  join(name: string, key: string | null = null, timeoutMs = this.options.connectTimeoutMs): Promise<void> {
    return this.channels.join(name, key, timeoutMs);
  }

  /** Leaves a channel (and stops rejoining it after reconnects). */
  part(name: string, message: string): void {
    this.channels.part(name, message);
  }

  /** Whether the channel is to be joined (and rejoined after reconnects): false once parted. */
  wants(channel: string): boolean {
    return this.channels.wants(channel);
  }

  /**
   * Sends one message (split into as many lines as it needs) through the writer. Where the
   * server offers echo-message, resolves with the msgid of its last line once the server has
   * echoed it (so it was accepted); otherwise with null once it is written.
   */
  async send(kind: IrcMessageKind, target: string, text: string, tags?: Record<string, string>, onWritten?: () => void): Promise<string | null> {
    if (this.state !== "connected") throw new IrcFailure("disconnected", "not connected to IRC");
    // Client tags (a reply's +reply) only where the server relays them.
    const sendTags = tags && Object.keys(tags).length > 0 && this.client.network.cap.isEnabled("message-tags") ? tags : undefined;
    const pieces = this.writer.pieces(kind, target, text);
    const echo = this.client.network.cap.isEnabled("echo-message") ? this.echoes.expect(target, pieces.length) : null;
    try {
      await this.writer.message(kind, target, pieces, sendTags);
      echo?.written();
      onWritten?.();
    } catch (err) {
      echo?.cancel();
      throw err;
    }
    return echo ? echo.echoed : null;
  }

  /** Whether the server granted an IRCv3 capability on this connection (message-tags, draft/message-redaction, ...). */
  hasCap(cap: string): boolean {
    return this.state === "connected" && this.client.network.cap.isEnabled(cap);
  }

  /** `TAGMSG target` (a reaction, typing); false, sending nothing, without message-tags: never text instead. */
  async sendTags(target: string, tags: Record<string, string>): Promise<boolean> {
    if (!this.hasCap("message-tags")) return false;
    await this.writer.tagmsg(target, tags);
    return true;
  }

  /** Takes back a line by its msgid (`REDACT`); false, sending nothing, where the server does not offer it. */
  async redact(target: string, msgid: string, reason?: string): Promise<boolean> {
    if (!this.hasCap(REDACTION_CAP)) return false;
    await this.writer.redact(target, msgid, reason);
    return true;
  }

  /** Says goodbye and stops for good (no reconnect). */
  async quit(message: string): Promise<void> {
    this.backoff.cancel();
    const wasConnected = this.state === "connected" || this.state === "connecting";
    this.state = "stopped";
    if (!wasConnected) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2_000);
      this.client.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      this.writer.quit(message);
    });
  }
}

