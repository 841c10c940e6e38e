/**
 * The Matrix libraries' logging, set up so that a message below the configured level costs
 * nothing. matrix-appservice-bridge sets the bot SDK's level to DEBUG ("we filter the logging
 * out in winston") and its own `Logger.debug` calls `winston.log("debug", ...)`, which winston
 * runs through its whole stream pipeline before a transport drops it: the SDK logged (and
 * deep-copied the parameters of) every request it made, so each message sent into Matrix paid
 * for several discarded log lines (see bench/relayCost.ts).
 */
import { LogLevel, LogService } from "@vector-im/matrix-bot-sdk";
import { Logger as LibraryLogger } from "matrix-appservice-bridge";

/** winston's npm levels, most severe first. */
const SEVERITY = ["error", "warn", "info", "http", "verbose", "debug", "silly"];

interface LevelledLog {
  log: (level: string, ...rest: unknown[]) => unknown;
}

/** Configures the libraries' console logging at `level` ("info" or "warn") and drops what is below it before any formatting. */
export function configureLibraryLogging(level: "info" | "warn", json: boolean): void {
  LibraryLogger.configure({ console: level, json });
  LogService.setLevel(level === "info" ? LogLevel.INFO : LogLevel.WARN);
  const winston = (LibraryLogger as unknown as { root: { winston?: LevelledLog } }).root.winston;
  if (!winston) return;
  const threshold = SEVERITY.indexOf(level);
  const log = winston.log.bind(winston);
  winston.log = (entryLevel: string, ...rest: unknown[]) => {
    const severity = SEVERITY.indexOf(entryLevel);
    return severity !== -1 && severity > threshold ? winston : log(entryLevel, ...rest);
  };
}
