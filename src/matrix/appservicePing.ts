/** Asks the homeserver to ping the appservice: it confirms the link and makes it retry queued transactions now. */
import type { BridgeConfig } from "../config/schema.js";
import { getLogger } from "../logging.js";
import type { Registration } from "../registration.js";

const log = getLogger("matrix/ping");

export async function askHomeserverToPing(homeserver: BridgeConfig["homeserver"], registration: Registration): Promise<void> {
  const url = `${homeserver.url}/_matrix/client/v1/appservice/${encodeURIComponent(registration.id)}/ping`;
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: { Authorization: `Bearer ${registration.as_token}`, "Content-Type": "application/json" },
      body: "{}",
      signal: AbortSignal.timeout(homeserver.requestTimeoutMs),
    });
    if (!res.ok) log.warn("Homeserver could not reach the bridge", { status: res.status, body: await res.text() });
    else log.info("Homeserver reaches the bridge", await res.json());
  } catch (err) {
    log.warn("Could not ask the homeserver for a ping", { error: (err as Error).message });
  }
}
