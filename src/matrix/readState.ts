/**
 * Reading a room's state without joining it. The library's `Intent.getStateEvent` first joins
 * the room whenever its membership cache does not say "join": a read raced with a kick (chanop
 * sync reading power levels as the kick arrived) brought the bridge bot straight back into a
 * public room its moderator had just removed it from. Every read of the bot goes through here.
 */
import type { Intent } from "matrix-appservice-bridge";

/** The state event's content, or null when there is none or it cannot be read (not in the room). */
export async function readStateEvent<T = Record<string, unknown>>(intent: Intent, roomId: string, type: string, stateKey = ""): Promise<T | null> {
  try {
    return ((await intent.matrixClient.getRoomStateEvent(roomId, type, stateKey)) as T) ?? null;
  } catch {
    return null;
  }
}
