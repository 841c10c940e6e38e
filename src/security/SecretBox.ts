/**
 * Encryption at rest for users' IRC passwords and channel keys: AES-256-GCM, with the key
 * derived (HKDF-SHA-256) from a file the admin makes once (`credentials.keyFile`). Each value
 * gets its own random IV; the GCM tag makes tampering or a wrong key an error, not garbage.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { ConfigError } from "../config/load.js";

const VERSION = "v1";
const MIN_KEY_FILE_BYTES = 32;

export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  /** Reads the key file; a missing or too short file is a config error naming the key. */
  static fromKeyFile(path: string, configFile = "<config>"): SecretBox {
    let secret: Buffer;
    let mode: number;
    try {
      secret = readFileSync(path);
      mode = statSync(path).mode;
    } catch (err) {
      throw new ConfigError(configFile, [`credentials.keyFile: cannot read ${path}: ${(err as Error).message}`]);
    }
    // Whoever reads the key reads every stored password. (Windows has no such mode bits.)
    if (process.platform !== "win32" && (mode & 0o077) !== 0) {
      const octal = (mode & 0o777).toString(8).padStart(3, "0");
      throw new ConfigError(configFile, [`credentials.keyFile: ${path} is readable or writable by others (mode ${octal}); let only its owner read it: chmod 600 ${path}`]);
    }
    if (secret.length < MIN_KEY_FILE_BYTES) {
      throw new ConfigError(configFile, [`credentials.keyFile: ${path} holds ${secret.length} bytes; expected at least ${MIN_KEY_FILE_BYTES} random bytes (openssl rand -out ${path} 32)`]);
    }
    return new SecretBox(Buffer.from(hkdfSync("sha256", secret, Buffer.alloc(0), "matrix-irc-bridge secrets v1", 32)));
  }

  seal(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    const sealed = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return [VERSION, iv.toString("base64"), cipher.getAuthTag().toString("base64"), sealed.toString("base64")].join(".");
  }

  /** The plaintext; throws if the value was sealed with another key or altered. */
  open(value: string): string {
    const [version, iv, tag, sealed] = value.split(".");
    if (version !== VERSION || !iv || !tag || sealed === undefined) throw new Error("not a sealed value");
    const decipher = createDecipheriv("aes-256-gcm", this.key, Buffer.from(iv, "base64"));
    decipher.setAuthTag(Buffer.from(tag, "base64"));
    return Buffer.concat([decipher.update(Buffer.from(sealed, "base64")), decipher.final()]).toString("utf8");
  }
}
