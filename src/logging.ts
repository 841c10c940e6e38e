import winston from "winston";
import type { LoggingConfig } from "./config/schema.js";

export type Logger = winston.Logger;

const root: winston.Logger = winston.createLogger({
  level: "info",
  transports: [new winston.transports.Console({ format: consoleFormat() })],
});

function consoleFormat(): winston.Logform.Format {
  return winston.format.combine(
    winston.format.timestamp(),
    winston.format.printf(({ timestamp, level, message, module, ...meta }) => {
      const extra = Object.keys(meta).length ? ` ${JSON.stringify(meta)}` : "";
      return `${timestamp} ${level.toUpperCase().padEnd(5)} [${module ?? "bridge"}] ${message}${extra}`;
    }),
  );
}

function jsonFormat(): winston.Logform.Format {
  return winston.format.combine(winston.format.timestamp(), winston.format.json());
}

/** Configures the process-wide logger; loggers made earlier by `getLogger` follow it. */
export function configureLogging(config: LoggingConfig): void {
  const format = config.format === "json" ? jsonFormat() : consoleFormat();
  const transports: winston.transport[] = [new winston.transports.Console({ format, stderrLevels: ["error"] })];
  if (config.file) transports.push(new winston.transports.File({ filename: config.file, format: jsonFormat() }));
  root.configure({ level: config.level, transports });
}

/** A logger that names its module in every line (`[irc/pool]`). */
export function getLogger(module: string): winston.Logger {
  return root.child({ module });
}

export async function closeLogging(): Promise<void> {
  await new Promise<void>((resolve) => {
    root.on("finish", () => resolve());
    root.end();
    setTimeout(resolve, 500).unref();
  });
}
