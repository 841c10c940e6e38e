/**
 * A tiny IRC server for tests that need lines no real IRCd would send (or capabilities the
 * test IRCd lacks). It welcomes every client (001..005, end of MOTD), answers CAP LS (no
 * capabilities unless given some), PING and JOIN (with a NAMES listing), and lets the test
 * write anything, byte for byte, to the clients in a channel.
 */
import { createServer, type Server, type Socket } from "node:net";
import { waitFor } from "./wait.js";

export interface HostileClient {
  socket: Socket;
  nick: string;
  registered: boolean;
  channels: Set<string>;
  /** Lines the client sent, in order. */
  received: string[];
  /** Capabilities the client was granted (see the `caps` option). */
  caps: Set<string>;
  /** CAP negotiation in progress: the welcome waits for CAP END. */
  negotiating: boolean;
  userSent: boolean;
}

export const SERVER_NAME = "hostile.test";

export class HostileIrcd {
  private server: Server | null = null;
  readonly clients = new Set<HostileClient>();
  port = 0;

  private msgids = 0;

  /**
   * `members`: nicks (besides the joining client) listed as members of every channel.
   * `caps`: capabilities offered in CAP LS and granted on request (none by default); with
   * `echo-message` granted, a client's PRIVMSG comes back to it tagged with a msgid.
   */
  constructor(
    private readonly members: string[] = [],
    private readonly caps: string[] = [],
  ) {}

  async start(): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.server = server;
    this.port = (server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    for (const c of this.clients) c.socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private accept(socket: Socket): void {
    const client: HostileClient = { socket, nick: "*", registered: false, channels: new Set(), received: [], caps: new Set(), negotiating: false, userSent: false };
    this.clients.add(client);
    let buffer = "";
    socket.on("data", (data) => {
      buffer += data.toString("utf8");
      let end: number;
      while ((end = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, end).replace(/\r$/, "");
        buffer = buffer.slice(end + 1);
        client.received.push(line);
        this.onLine(client, line);
      }
    });
    socket.on("error", () => undefined);
    socket.on("close", () => this.clients.delete(client));
  }

  private write(client: HostileClient, line: string): void {
    if (!client.socket.destroyed) client.socket.write(`${line}\r\n`);
  }

  private onLine(client: HostileClient, tagged: string): void {
    // A client's own tags (a reply's +reply) are not read here.
    const line = tagged.startsWith("@") ? tagged.slice(tagged.indexOf(" ") + 1) : tagged;
    const [command, ...rest] = line.split(" ");
    const arg = rest[0] ?? "";
    const mask = () => `${client.nick}!u@bridge.test`;
    switch (command.toUpperCase()) {
      case "CAP":
        if (arg.toUpperCase() === "LS") {
          client.negotiating = this.caps.length > 0;
          this.write(client, `:${SERVER_NAME} CAP * LS :${this.caps.join(" ")}`);
        } else if (arg.toUpperCase() === "REQ") {
          const wanted = rest.slice(1).join(" ").replace(/^:/, "").split(" ").filter(Boolean);
          const granted = wanted.filter((c) => this.caps.includes(c));
          granted.forEach((c) => client.caps.add(c));
          this.write(client, `:${SERVER_NAME} CAP ${client.nick} ${granted.length === wanted.length ? "ACK" : "NAK"} :${wanted.join(" ")}`);
        } else if (arg.toUpperCase() === "END") {
          client.negotiating = false;
          if (client.userSent && !client.registered) this.welcome(client);
        }
        break;
      case "PRIVMSG":
        if (client.caps.has("echo-message")) this.write(client, `@msgid=hostile-${++this.msgids} :${mask()} ${line}`);
        break;
      case "NICK":
        if (client.registered) this.write(client, `:${mask()} NICK ${arg}`);
        client.nick = arg.replace(/^:/, "");
        break;
      case "USER":
        client.userSent = true;
        if (!client.negotiating) this.welcome(client);
        break;
      case "PING":
        this.write(client, `:${SERVER_NAME} PONG ${SERVER_NAME} ${rest.join(" ")}`);
        break;
      case "JOIN":
        for (const channel of arg.split(",").filter(Boolean)) {
          client.channels.add(channel.toLowerCase());
          this.write(client, `:${mask()} JOIN ${channel}`);
          this.write(client, `:${SERVER_NAME} 353 ${client.nick} = ${channel} :${[client.nick, ...this.members].join(" ")}`);
          this.write(client, `:${SERVER_NAME} 366 ${client.nick} ${channel} :End of /NAMES list.`);
        }
        break;
      case "PART":
        client.channels.delete(arg.toLowerCase());
        this.write(client, `:${mask()} PART ${arg}`);
        break;
      case "QUIT":
        this.write(client, `ERROR :Closing link (${rest.join(" ")})`);
        client.socket.end();
        break;
    }
  }

  private welcome(client: HostileClient): void {
    client.registered = true;
    for (const line of [
      `001 ${client.nick} :Welcome to the hostile network ${client.nick}`,
      `002 ${client.nick} :Your host is ${SERVER_NAME}, running version hostile-1`,
      `003 ${client.nick} :This server was created today`,
      `004 ${client.nick} ${SERVER_NAME} hostile-1 iow ntkl kl`,
      `005 ${client.nick} CHANTYPES=# PREFIX=(ov)@+ CHANMODES=b,k,l,nt CASEMAPPING=rfc1459 NICKLEN=30 :are supported by this server`,
      `422 ${client.nick} :MOTD File is missing`,
    ]) {
      this.write(client, `:${SERVER_NAME} ${line}`);
    }
  }

  /** The clients in a channel (registered and joined). */
  inChannel(channel: string): HostileClient[] {
    return [...this.clients].filter((c) => c.registered && c.channels.has(channel.toLowerCase()));
  }

  /** Writes raw bytes (no line ending added) to every client in a channel; returns how many. */
  sendRaw(channel: string, data: string | Buffer): number {
    const clients = this.inChannel(channel);
    for (const c of clients) c.socket.write(data);
    return clients.length;
  }

  /** Writes a line (CRLF added) to every client in a channel. */
  sendLine(channel: string, line: string | Buffer): number {
    return this.sendRaw(channel, Buffer.concat([Buffer.isBuffer(line) ? line : Buffer.from(line, "utf8"), Buffer.from("\r\n")]));
  }

  waitForJoin(nick: string, channel: string, timeoutMs = 60_000): Promise<HostileClient> {
    return waitFor(
      `${nick} to join ${channel} on the hostile server`,
      () => [...this.clients].find((c) => c.nick.toLowerCase() === nick.toLowerCase() && c.channels.has(channel.toLowerCase())),
      timeoutMs,
    );
  }
}
