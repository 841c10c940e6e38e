/**
 * Media links as one piece, when `media.publicUrl` is set: the signing key (made if missing),
 * the list of redacted events whose links die, the server of the links (on the appservice's
 * HTTP app, or on a listener of its own), and long messages sent as a link to their text.
 */
import { join } from "node:path";
import type { Application } from "express";
import type { Intent } from "matrix-appservice-bridge";
import type { BridgeConfig } from "../config/schema.js";
import { MediaLinkPolicy } from "../format/longMessages.js";
import { MediaServer } from "../http/MediaServer.js";
import { loadSigningKey, MediaSigner } from "../http/mediaToken.js";
import { getLogger } from "../logging.js";
import type { DataStore } from "../store/DataStore.js";
import { MediaRedactions } from "./MediaRedactions.js";

const log = getLogger("bridge/media");

export class MediaLinks {
  private constructor(
    private readonly config: BridgeConfig,
    readonly signer: MediaSigner,
    readonly redactions: MediaRedactions,
    private readonly server: MediaServer,
  ) {}

  /** Null when the bridge serves no media (no `media.publicUrl`). */
  static open(config: BridgeConfig, store: DataStore, asToken: string): MediaLinks | null {
    const { media } = config;
    if (!media.publicUrl) return null;
    const redactions = new MediaRedactions(store, undefined, media.linkLifetimeSeconds);
    const signer = new MediaSigner(loadSigningKey(media.signingKeyFile ?? join(config.store.dataDir, "media-signing.key")), media.publicUrl, media.linkLifetimeSeconds, (ref) =>
      redactions.noteLinked(ref.roomId, [ref.eventId, ref.originalEventId]),
    );
    const server = new MediaServer(media, { signer, isRedacted: (eventId) => redactions.isRedacted(eventId), homeserverUrl: config.homeserver.url, asToken });
    return new MediaLinks(config, signer, redactions, server);
  }

  load(): Promise<void> {
    return this.redactions.load();
  }

  /** Serves links on the appservice's app when they have no port of their own. */
  mount(app: Application): void {
    if (this.config.media.port === null) app.use((req, res, next) => void (this.server.handle(req, res) || next()));
  }

  /** Listens on the links' own port, if they have one. */
  async listen(): Promise<void> {
    const { media, appservice } = this.config;
    if (media.port === null) return;
    const host = media.bindAddress ?? appservice.bindAddress;
    await this.server.listen(media.port, host);
    log.info("Media links listening", { address: host, port: media.port, publicUrl: media.publicUrl });
  }

  close(): Promise<void> {
    return this.server.close().catch(() => undefined);
  }

  /** Long messages as their first line and a link to the text, uploaded by the bot. */
  longMessagePolicy(bot: () => Intent): MediaLinkPolicy {
    const upload = (text: string) => bot().uploadContent(Buffer.from(text, "utf8"), { name: "message.txt", type: "text/plain; charset=utf-8" });
    return new MediaLinkPolicy(upload, this.signer, undefined, (err) => log.warn("Could not upload a long message; sending its lines", { error: err.message }));
  }
}
