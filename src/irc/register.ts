/**
 * One registration attempt on a fresh socket: NICK/USER (with SASL PLAIN or PASS when the
 * user has credentials), falling back to other nicks on 433/432, until the server's welcome.
 * Fatal answers (bans, bad passwords) and silence past the timeout fail the attempt.
 */
import type { Client, IrcErrorEvent } from "irc-framework";
import { DEFAULT_NICKLEN, fallbackNick } from "../format/nick.js";
import { classifyCloseReason } from "./ConnectScheduler.js";
import { IrcFailure } from "./errors.js";
import { isSafeWord, type IrcWriter } from "./IrcWriter.js";
import { explainNumeric, NUMERIC_EVENT, type NumericReply } from "./numerics.js";

const MAX_NICK_ATTEMPTS = 10;

export interface RegistrationRequest {
  nick: string;
  username: string;
  credentials: { account: string; password: string } | null;
  timeoutMs: number;
  /** "host:port", for messages. */
  server: string;
  /** The last error the connection saw, for the message when the socket closes. */
  lastError: () => string;
}

/** Resolves with the nick the server welcomed us with, and whether SASL logged us in. */
export function register(client: Client, writer: IrcWriter, request: RegistrationRequest): Promise<{ nick: string; loggedIn: boolean }> {
  const { nick: baseNick, credentials } = request;
  let nickAttempt = 0;
  let nicklen = DEFAULT_NICKLEN;
  let loggedIn = false;
  return new Promise((resolve, reject) => {
    // irc-framework writes NICK, USER and PASS itself at connect: they are checked here
    // instead, so nothing unsafe reaches those lines either.
    const unsafe = [baseNick, request.username].find((word) => !isSafeWord(word));
    if (unsafe !== undefined) return reject(new IrcFailure("unsafe_line", `${JSON.stringify(unsafe)} cannot be sent to IRC as a nick or username`, true));
    if (credentials && (/[\r\n\0]/.test(credentials.password) || !isSafeWord(credentials.account))) {
      return reject(new IrcFailure("unsafe_line", "the stored account or password cannot be sent to IRC (a line break or NUL character)", true));
    }
    const onLoggedIn = () => {
      loggedIn = true;
    };
    const cleanup = () => {
      clearTimeout(timer);
      for (const [event, handler] of listeners) client.off(event, handler);
    };
    const fail = (err: IrcFailure) => {
      cleanup();
      reject(err);
    };
    const onRegistered = (e: { nick: string }) => {
      // irc-framework updates user.nick only after its listeners have run.
      client.user.nick = e.nick;
      cleanup();
      resolve({ nick: e.nick, loggedIn });
    };
    const onClose = () => fail(new IrcFailure("connect_failed", `could not connect to ${request.server}${request.lastError() ? ` (${request.lastError()})` : ""}`));
    const onNickInUse = () => {
      nickAttempt += 1;
      if (nickAttempt > MAX_NICK_ATTEMPTS) return writer.quit("No free nick");
      void writer.send("NICK", [fallbackNick(baseNick.slice(0, nicklen), nickAttempt, nicklen)]).catch(() => undefined);
    };
    // A nick the server finds erroneous is most often too long for it (NICKLEN is only
    // announced after registration): fall back to the 9 characters every server accepts.
    const onNickInvalid = () => {
      if (nicklen <= 9) return writer.quit("No acceptable nick");
      nicklen = 9;
      void writer.send("NICK", [nickAttempt > 0 ? fallbackNick(baseNick.slice(0, 9), nickAttempt, 9) : baseNick.slice(0, 9)]).catch(() => undefined);
    };
    const onError = (e: IrcErrorEvent) => {
      const reason = e.reason ?? e.error;
      if (e.error === "irc" && classifyCloseReason(reason) === "fatal") fail(new IrcFailure(e.error, reason, true));
    };
    // Refusals for good (463 host, 464 password, 465 banned), from the numerics table.
    const onNumeric = (reply: NumericReply) => {
      if (reply.meaning?.role === "register") fail(new IrcFailure(reply.meaning.name.toLowerCase(), explainNumeric(reply), true));
    };
    const timer = setTimeout(() => {
      fail(new IrcFailure("connect_timeout", `no welcome from ${request.server} within ${request.timeoutMs} ms`));
      // Dropped, not quit: a server that went silent may never close a graceful QUIT.
      writer.abort();
    }, request.timeoutMs);
    // irc-framework's events are untyped.
    const listeners: [string, (e: any) => void][] = [
      ["loggedin", onLoggedIn],
      ["registered", onRegistered],
      ["close", onClose],
      ["nick in use", onNickInUse],
      ["nick invalid", onNickInvalid],
      ["irc error", onError],
      [NUMERIC_EVENT, onNumeric],
    ];
    for (const [event, handler] of listeners) client.on(event, handler);
    // connect(options) would replace every option, so they are set one by one.
    client.options.nick = baseNick;
    client.options.username = request.username;
    // SASL PLAIN where the server offers it; PASS otherwise (many networks hand it to services).
    client.options.account = credentials ? { account: credentials.account, password: credentials.password } : undefined;
    client.options.password = credentials?.password;
    client.connect();
  });
}
