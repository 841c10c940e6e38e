// The parts of irc-framework (which ships no typings) that the bridge uses.
declare module "irc-framework" {
  import { EventEmitter } from "node:events";

  export interface ClientOptions {
    host: string;
    port: number;
    nick: string;
    username?: string;
    gecos?: string;
    password?: string;
    /** SASL PLAIN credentials. */
    account?: { account: string; password: string };
    tls?: boolean;
    rejectUnauthorized?: boolean;
    outgoing_addr?: string;
    auto_reconnect?: boolean;
    enable_echomessage?: boolean;
    ping_interval?: number;
    ping_timeout?: number;
    message_max_length?: number;
    version?: string | null;
    encoding?: string;
    /** A transport class (default: irc-framework's TCP transport). */
    transport?: unknown;
    /** Not irc-framework's: read by the bridge's QuietTransport. */
    listener?: { readonly nick: string; readonly hearsAll: boolean };
  }

  export interface MessageEvent {
    from_server: boolean;
    nick: string;
    ident: string;
    hostname: string;
    target: string;
    message: string;
    tags: Record<string, string>;
    time?: number;
    account?: string;
    /** The batch the line came in (e.g. type "chathistory" for a channel's replayed history). */
    batch?: { id: string; type: string; params: string[] };
  }

  export interface IrcErrorEvent {
    error: string;
    channel?: string;
    nick?: string;
    reason?: string;
  }

  export interface JoinEvent {
    nick: string;
    ident: string;
    hostname: string;
    channel: string;
  }

  export class Client extends EventEmitter {
    constructor(options?: Partial<ClientOptions>);
    options: ClientOptions;
    user: { nick: string; username: string };
    network: {
      name: string;
      options: Record<string, string | string[] | undefined>;
      supports(feature: string): string | boolean;
      cap: { isEnabled(cap: string): boolean; enabled: string[] };
    };
    connected: boolean;
    connect(options?: Partial<ClientOptions>): void;
    quit(message?: string): void;
    raw(...args: string[]): void;
    say(target: string, message: string): void;
    notice(target: string, message: string): void;
    action(target: string, message: string): void;
    join(channel: string, key?: string): void;
    part(channel: string, message?: string): void;
    changeNick(nick: string): void;
    requestCap(cap: string | string[]): void;
  }
}
