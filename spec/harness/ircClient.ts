/** An IRC user for tests: a plain irc-framework client that records what it sees. */
import { Client, type MessageEvent } from "irc-framework";
import { waitFor } from "./wait.js";

export interface SeenLine {
  kind: "privmsg" | "notice" | "action";
  nick: string;
  target: string;
  text: string;
}

export class IrcTestClient {
  readonly client: Client;
  readonly lines: SeenLine[] = [];
  readonly raw: string[] = [];

  constructor(
    readonly nick: string,
    private readonly port: number,
  ) {
    this.client = new Client({ auto_reconnect: false, version: null });
    const record = (kind: SeenLine["kind"]) => (e: MessageEvent) => {
      if (!e.from_server) this.lines.push({ kind, nick: e.nick, target: e.target, text: e.message });
    };
    this.client.on("privmsg", record("privmsg"));
    this.client.on("notice", record("notice"));
    this.client.on("action", record("action"));
    this.client.on("raw", (e: { line: string; from_server: boolean }) => {
      if (e.from_server) this.raw.push(e.line.replace(/\r?\n$/, ""));
    });
  }

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.nick} was not welcomed in time`)), 20_000);
      this.client.once("registered", () => {
        clearTimeout(timer);
        resolve();
      });
      this.client.connect({ host: "127.0.0.1", port: this.port, nick: this.nick, username: this.nick.slice(0, 10).toLowerCase(), gecos: "test user" });
    });
  }

  async join(channel: string): Promise<void> {
    this.client.join(channel);
    await this.waitForRaw(`JOIN of ${channel}`, (line) => new RegExp(`^(@\\S+ )?:${this.nick}!\\S+ JOIN :?${escape(channel)}( |$)`, "i").test(line));
  }

  say(target: string, text: string): void {
    this.client.say(target, text);
  }

  /** Sends `TAGMSG target` with client tags (IRCv3 message-tags), e.g. `{ "+typing": "active" }`. */
  tagmsg(target: string, tags: Record<string, string>): void {
    const escaped = Object.entries(tags).map(([k, v]) => (v === "" ? k : `${k}=${v.replace(/\\/g, "\\\\").replace(/;/g, "\\:").replace(/ /g, "\\s")}`));
    this.client.raw(`@${escaped.join(";")} TAGMSG ${target}`);
  }

  /** Raw TAGMSG lines seen from `nick`, each with its tags unescaped. */
  tagmsgsFrom(nick: string): { line: string; tags: Record<string, string> }[] {
    return this.raw.filter((l) => new RegExp(`^@\\S+ :${escape(nick)}!\\S+ TAGMSG `, "i").test(l)).map((line) => ({ line, tags: parseTags(line) }));
  }

  waitForLine(match: (l: SeenLine) => boolean, what = "an IRC line", timeoutMs = 20_000): Promise<SeenLine> {
    return waitFor(`${this.nick} to see ${what}`, () => this.lines.find(match), timeoutMs);
  }

  waitForRaw(what: string, match: (line: string) => boolean, timeoutMs = 20_000): Promise<string> {
    return waitFor(`${this.nick} to see ${what}`, () => this.raw.find(match), timeoutMs);
  }

  /** Nicks in a channel, from a fresh NAMES reply. */
  async names(channel: string): Promise<string[]> {
    const start = this.raw.length;
    this.client.raw("NAMES", channel);
    await this.waitForRaw(`end of NAMES for ${channel}`, (l) => / 366 /.test(l) && this.raw.indexOf(l) >= start);
    return this.raw
      .slice(start)
      .filter((l) => / 353 /.test(l))
      .flatMap((l) => l.split(" :").pop()!.trim().split(/\s+/))
      .map((n) => n.replace(/^[~&@%+]+/, "").split("!")[0]);
  }

  quit(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, 2_000);
      this.client.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      this.client.quit("bye");
    });
  }
}

/** The tags of a raw line (`@a=b;c :prefix ...`), values unescaped. */
export function parseTags(line: string): Record<string, string> {
  if (!line.startsWith("@")) return {};
  const unescape = (v: string) => v.replace(/\\(.)/g, (_, c: string) => ({ ":": ";", s: " ", "\\": "\\", r: "\r", n: "\n" })[c] ?? c);
  return Object.fromEntries(line.slice(1, line.indexOf(" ")).split(";").map((t) => {
    const eq = t.indexOf("=");
    return eq < 0 ? [t, ""] : [t.slice(0, eq), unescape(t.slice(eq + 1))];
  }));
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
