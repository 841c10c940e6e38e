import type { Client } from "irc-framework";
import { IrcFailure } from "./errors.js";

/**
 * Sends a command and waits for its answer: `listen` gets each event of the named kinds and
 * settles the exchange by returning a result (not undefined) or throwing. A closed
 * connection or no answer in time rejects.
 */
export function exchange<T>(
  client: Client,
  what: string,
  events: string[],
  // irc-framework's events are untyped; each listener reads the fields it knows.
  listen: (event: string, e: any) => T | undefined,
  /** Writes the command; a rejection (e.g. a line the writer refuses) fails the exchange. */
  send: () => Promise<void>,
  timeoutMs: number,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const handlers = events.map((name) => {
      const handler = (e: unknown) => {
        let result: T | undefined;
        try {
          result = listen(name, e);
        } catch (err) {
          cleanup();
          return reject(err);
        }
        if (result === undefined) return;
        cleanup();
        resolve(result);
      };
      client.on(name, handler);
      return [name, handler] as const;
    });
    const onClose = () => {
      cleanup();
      reject(new IrcFailure("disconnected", `the connection closed while ${what}`));
    };
    // The answer is awaited from when the line is on the socket (flood control may hold it first).
    let timer: NodeJS.Timeout | undefined;
    const startTimer = () => {
      timer = setTimeout(() => {
        cleanup();
        reject(new IrcFailure("timeout", `no answer from the server when ${what}`));
      }, timeoutMs);
    };
    let settled = false;
    const cleanup = () => {
      settled = true;
      clearTimeout(timer);
      for (const [name, handler] of handlers) client.off(name, handler);
      client.off("close", onClose);
    };
    client.on("close", onClose);
    send().then(
      () => {
        if (!settled) startTimer();
      },
      (err: Error) => {
        cleanup();
        reject(err);
      },
    );
  });
}
