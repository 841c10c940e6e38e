/**
 * Pure rules of chanop sync: which power level a set of IRC channel prefixes is worth, and
 * how the bridge's wishes merge into a room's `m.room.power_levels` without ever lowering what
 * a Matrix admin set by hand (the bridge only moves entries it set itself, remembered in
 * `owned`). No I/O here: ChanopSync reads the room, asks `mergePowerLevels`, writes the result.
 */
export { parsePrefix } from "../format/prefix.js";

/**
 * The level a member holding `held` prefix modes gets: the highest mapped level of the modes
 * they still hold that the server offers, kept below `ceiling` (the bot's own level: Matrix
 * cannot take back a level equal to the giver's). Null: no mapped mode, the room's default.
 */
export function levelForModes(held: string, offered: string, modePowerMap: Record<string, number>, ceiling: number): number | null {
  let best: number | null = null;
  for (const mode of held) {
    if (!offered.includes(mode)) continue;
    const level = modePowerMap[mode];
    if (typeof level !== "number") continue;
    if (best === null || level > best) best = level;
  }
  if (best === null) return null;
  return Math.min(best, ceiling - 1);
}

/** The power levels content fields the bridge reads and writes. */
export interface PowerLevels {
  users?: Record<string, number>;
  users_default?: number;
  events_default?: number;
  events?: Record<string, number>;
  state_default?: number;
  [key: string]: unknown;
}

/** A pseudo user key under which `owned` remembers an events_default the bridge set (+m). */
export const EVENTS_DEFAULT = "\u0000events_default";

export interface MergeInput {
  current: PowerLevels;
  /** The levels IRC says users should have (absent: no mapped mode). */
  desired: Map<string, number>;
  /** events_default wanted (+m), or null for "not moderated". */
  eventsDefault: number | null;
  /** Entries the bridge set, with the value it set. */
  owned: Map<string, number>;
  /** The bot's own user ID. */
  botUserId: string;
  /** The bot's level when the content does not say it (room version 12: creators are above every level). */
  botLevel?: number;
  /** Users no entry may name (room version 12: the creators). */
  untouchable?: ReadonlySet<string>;
}

export interface MergeResult {
  content: PowerLevels;
  owned: Map<string, number>;
  changed: boolean;
}

/** The level a user has in `content`. */
export function levelOf(content: PowerLevels, userId: string): number {
  const users = content.users ?? {};
  return typeof users[userId] === "number" ? users[userId] : (content.users_default ?? 0);
}

/**
 * Merges what IRC wants into the room's power levels. An entry moves only when it is absent
 * (or at the default) or still holds the value the bridge last set; an entry someone else
 * changed is theirs from then on. Entries at or above the bot's own level are never touched.
 */
export function mergePowerLevels({ current, desired, eventsDefault, owned, botUserId, botLevel, untouchable }: MergeInput): MergeResult {
  const users: Record<string, number> = { ...(current.users ?? {}) };
  const userDefault = current.users_default ?? 0;
  const bot = botLevel ?? levelOf(current, botUserId);
  const nextOwned = new Map<string, number>();
  const movable = (userId: string) => {
    const has = typeof users[userId] === "number";
    const now = has ? users[userId] : userDefault;
    if (now >= bot || userId === botUserId || untouchable?.has(userId)) return false;
    if (!has || now === userDefault) return true;
    return owned.get(userId) === now;
  };
  for (const [userId, level] of desired) {
    if (!movable(userId)) continue;
    const wanted = Math.min(level, bot - 1);
    if (wanted === userDefault) delete users[userId];
    else users[userId] = wanted;
    nextOwned.set(userId, wanted);
  }
  for (const [userId, level] of owned) {
    if (userId === EVENTS_DEFAULT || desired.has(userId)) continue;
    // No longer wanted: back to the default, if it still holds what the bridge set.
    if (users[userId] === level && level < bot) delete users[userId];
  }
  const content: PowerLevels = { ...current, users };
  const currentEvents = current.events_default ?? 0;
  if (eventsDefault !== null) {
    const ownedEvents = owned.get(EVENTS_DEFAULT);
    if (currentEvents === 0 || currentEvents === ownedEvents) {
      content.events_default = eventsDefault;
      nextOwned.set(EVENTS_DEFAULT, eventsDefault);
    }
  } else if (owned.has(EVENTS_DEFAULT) && currentEvents === owned.get(EVENTS_DEFAULT)) {
    content.events_default = 0;
  }
  return { content, owned: nextOwned, changed: !samePowerLevels(current, content) };
}

function samePowerLevels(a: PowerLevels, b: PowerLevels): boolean {
  if ((a.events_default ?? 0) !== (b.events_default ?? 0)) return false;
  const ua = a.users ?? {};
  const ub = b.users ?? {};
  const keys = new Set([...Object.keys(ua), ...Object.keys(ub)]);
  for (const key of keys) if (ua[key] !== ub[key]) return false;
  return true;
}

/** What a power levels event may weigh, with room to spare for the event's envelope (Synapse refuses PDUs over 64 KiB). */
export const POWER_LEVELS_TARGET_BYTES = 60_000;

/**
 * Makes a power levels event smaller after the homeserver said it is too large. Step 0 drops
 * entries at the default level, step 1 entries of users neither in the room nor wanted by IRC
 * (`keep`), step 2 ghosts' entries, lowest levels first, only as many as it takes to weigh at
 * most `targetBytes`. Never the bot, nor levels at or above its own.
 */
export function shrinkPowerLevels(
  content: PowerLevels,
  step: number,
  keep: (userId: string) => boolean,
  isGhost: (userId: string) => boolean,
  botUserId: string,
  botLevel?: number,
  targetBytes = POWER_LEVELS_TARGET_BYTES,
): { content: PowerLevels; dropped: number } {
  const users = { ...(content.users ?? {}) };
  const userDefault = content.users_default ?? 0;
  const bot = botLevel ?? levelOf(content, botUserId);
  const candidates = Object.entries(users).filter(([userId, level]) => userId !== botUserId && level < bot);
  let dropped = 0;
  if (step < 2) {
    for (const [userId, level] of candidates) {
      if (step === 0 ? level === userDefault : !keep(userId)) {
        delete users[userId];
        dropped += 1;
      }
    }
  } else {
    let size = Buffer.byteLength(JSON.stringify({ ...content, users }));
    for (const [userId, level] of candidates.filter(([u]) => isGhost(u)).sort((a, b) => a[1] - b[1])) {
      if (size <= targetBytes) break;
      delete users[userId];
      size -= Buffer.byteLength(`${JSON.stringify(userId)}:${level},`);
      dropped += 1;
    }
  }
  return { content: { ...content, users }, dropped };
}

/**
 * What a Matrix level change means on IRC: the prefix mode a level maps to (the highest of the
 * grantable modes whose level it reaches), or null for none.
 */
export function modeForLevel(level: number, offered: string, modePowerMap: Record<string, number>, grantable = "ohv"): string | null {
  let best: string | null = null;
  for (const mode of grantable) {
    if (!offered.includes(mode) || typeof modePowerMap[mode] !== "number") continue;
    if (level >= modePowerMap[mode] && (best === null || modePowerMap[mode] > modePowerMap[best])) best = mode;
  }
  return best;
}
