/**
 * Commands whose answer matters, over one connection: topic, kick, nick change, WHOIS, a
 * channel's topic and modes, and raw commands from the admin room. Each resolves with the
 * server's answer or rejects with its reason.
 */
import type { Client } from "irc-framework";
import { IrcFailure } from "./errors.js";
import { exchange } from "./exchange.js";
import type { IrcConnection } from "./IrcConnection.js";
import { parseCommandLine, type IrcWriter } from "./IrcWriter.js";
import { explainNumeric, NUMERIC_EVENT, type NumericReply } from "./numerics.js";

/** Numerics that can refuse a channel command besides those of role "command" (a missing nick or channel). */
const ALSO_REFUSING_COMMANDS = new Set(["401", "403"]);

/** What a WHOIS found, or null when the nick is not on IRC. */
export interface WhoisResult {
  nick: string;
  ident: string;
  hostname: string;
  realName: string;
  account: string | null;
  channels: string[];
  server: string | null;
  away: string | null;
  idleSeconds: number | null;
}

export class ServerCommands {
  /** Raw commands waiting for their answers: a quiet connection then hears every line. */
  listening = 0;

  constructor(
    private readonly client: Client,
    private readonly writer: IrcWriter,
    private readonly conn: IrcConnection,
    private readonly timeoutMs: number,
  ) {}

  /** Sets a channel's topic; resolves once the server has announced it, rejects with its reason (e.g. not a channel operator). */
  setTopic(channel: string, topic: string): Promise<void> {
    const folded = this.conn.casefold(channel);
    return exchange<true>(
      this.client,
      `setting the topic of ${channel}`,
      ["topic", NUMERIC_EVENT],
      (event, e) => {
        if (event === "topic") return e.nick && this.conn.isSelf(e.nick) && this.conn.casefold(e.channel) === folded ? true : undefined;
        return this.commandError(e, channel);
      },
      () => this.writer.send("TOPIC", [channel], topic),
      this.timeoutMs,
    ).then(() => undefined);
  }

  /** Kicks `nick` from a channel; resolves once the server has announced it, rejects with its reason. */
  kick(channel: string, nick: string, reason: string): Promise<void> {
    const folded = this.conn.casefold(channel);
    return exchange<true>(
      this.client,
      `kicking ${nick} from ${channel}`,
      ["kick", NUMERIC_EVENT],
      (event, e) => {
        if (event === "kick") return this.conn.isSelf(e.nick) && this.conn.casefold(e.channel) === folded && this.conn.casefold(e.kicked) === this.conn.casefold(nick) ? true : undefined;
        return this.commandError(e, channel, nick);
      },
      () => this.writer.send("KICK", [channel, nick], reason),
      this.timeoutMs,
    ).then(() => undefined);
  }

  /** An error answer to a channel command, as an IrcFailure to throw (undefined when it is about something else). */
  private commandError(reply: NumericReply, channel: string, nick?: string): undefined {
    if (reply.meaning?.role !== "command" && !ALSO_REFUSING_COMMANDS.has(reply.code)) return undefined;
    const about = this.conn.casefold(reply.target);
    if (about !== this.conn.casefold(channel) && (nick === undefined || about !== this.conn.casefold(nick))) return undefined;
    throw new IrcFailure(reply.meaning!.name.toLowerCase(), explainNumeric(reply, this.conn.options.networkName), true);
  }

  /** Changes our nick now (kept for reconnects); rejects with the server's reason. */
  changeNick(nick: string): Promise<void> {
    const folded = this.conn.casefold(nick);
    return exchange<true>(
      this.client,
      `changing nick to ${nick}`,
      ["nick", NUMERIC_EVENT],
      (event, e) => {
        if (event === "nick") return this.conn.isSelf(e.nick) && this.conn.casefold(e.new_nick) === folded ? true : undefined;
        const reply = e as NumericReply;
        if (reply.meaning?.role !== "nick") return undefined;
        throw new IrcFailure(reply.meaning.name.toLowerCase(), explainNumeric(reply, this.conn.options.networkName), reply.meaning.fatal);
      },
      () => this.writer.send("NICK", [nick]),
      this.timeoutMs,
    ).then(() => {
      this.conn.options.nick = nick;
    });
  }

  /**
   * Sends one raw line (already checked: one line, a valid command word) and collects what
   * the server answers: numerics and the server's own lines, until it has been quiet for a
   * moment. The lines are returned as the server wrote them, without IRCv3 tags.
   */
  async rawCommand(line: string, quietMs = 1_500, maxMs = 5_000): Promise<string[]> {
    const { command, words, text } = parseCommandLine(line);
    const client = this.client;
    const ownPrefix = new RegExp(`^:${this.conn.nick.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}[! ]`, "i");
    const lines: string[] = [];
    let onRaw: (e: { line: string; from_server: boolean }) => void = () => undefined;
    this.listening += 1;
    try {
      await new Promise<void>((resolve, reject) => {
        let quiet: NodeJS.Timeout;
        const finish = () => {
          clearTimeout(quiet);
          clearTimeout(cap);
          resolve();
        };
        onRaw = (e) => {
          if (!e.from_server) return;
          const text = e.line.replace(/\r?\n$/, "").replace(/^@\S+ /, "");
          const fromServer = /^:[^\s!@]+ /.test(text) && !/^:\S+ (PING|PONG) /.test(text);
          if (!fromServer && !ownPrefix.test(text)) return;
          lines.push(text);
          clearTimeout(quiet);
          quiet = setTimeout(finish, quietMs);
        };
        const cap = setTimeout(finish, maxMs);
        quiet = setTimeout(finish, quietMs);
        client.on("raw", onRaw);
        this.writer.send(command, words, text).catch((err: Error) => {
          clearTimeout(quiet);
          clearTimeout(cap);
          reject(err);
        });
      });
    } finally {
      this.listening -= 1;
      client.off("raw", onRaw);
    }
    return lines;
  }

  /** The topic and modes of a channel, asked of the server now. */
  async channelInfo(channel: string): Promise<{ topic: string; modes: string }> {
    const folded = this.conn.casefold(channel);
    const same = (e: { channel?: string }) => e.channel !== undefined && this.conn.casefold(e.channel) === folded;
    const topic = exchange<string>(this.client, `asking the topic of ${channel}`, ["topic"], (_, e) => (same(e) && !e.nick ? e.topic : undefined), () => this.writer.send("TOPIC", [channel]), this.timeoutMs);
    const modes = exchange<string>(this.client, `asking the modes of ${channel}`, ["channel info"], (_, e) => (same(e) && e.raw_modes !== undefined ? e.raw_modes : undefined), () => this.writer.send("MODE", [channel]), this.timeoutMs);
    return { topic: await topic, modes: await modes };
  }

  /**
   * WHO on a channel, without joining it: the members the server shows us, each with the prefix
   * modes it holds ("ov"; all of them where the server offers multi-prefix), and the channel
   * each reply is about (a server may answer a mask; ChannelOps keeps the channel's own).
   */
  async who(channel: string): Promise<{ nick: string; modes: string; channel?: string }[]> {
    const folded = this.conn.casefold(channel);
    const e = await exchange<{ users: { nick?: unknown; channel?: unknown; channel_modes?: unknown }[] }>(
      this.client,
      `asking who is in ${channel}`,
      ["wholist"],
      (_, e) => (typeof e.target === "string" && this.conn.casefold(e.target) === folded ? e : undefined),
      () => this.writer.send("WHO", [channel]),
      this.timeoutMs,
    );
    return (e.users ?? []).flatMap((u) =>
      typeof u.nick === "string" && u.nick
        ? [{ nick: u.nick, modes: Array.isArray(u.channel_modes) ? u.channel_modes.filter((m) => typeof m === "string").join("") : "", ...(typeof u.channel === "string" ? { channel: u.channel } : {}) }]
        : [],
    );
  }

  /** WHOIS: what the server says about `nick`, or null when no such nick is on IRC. */
  async whois(nick: string): Promise<WhoisResult | null> {
    const folded = this.conn.casefold(nick);
    const e = await exchange<Record<string, any>>(this.client, `looking up ${nick}`, ["whois"], (_, e) => (this.conn.casefold(e.nick ?? "") === folded ? e : undefined), () => this.writer.send("WHOIS", [nick]), this.timeoutMs);
    if (e.error || !e.ident) return null;
    return {
      nick: e.nick,
      ident: e.ident,
      hostname: e.hostname,
      realName: e.real_name ?? "",
      account: e.account ?? null,
      channels: typeof e.channels === "string" ? e.channels.trim().split(/\s+/).filter(Boolean) : [],
      server: e.server ?? null,
      away: e.away ?? null,
      idleSeconds: e.idle !== undefined ? Number(e.idle) : null,
    };
  }
}
