/**
 * The admin room's commands. Each returns the text of its reply; a thrown error becomes a
 * reply saying what went wrong. Commands that concern one network get its pool.
 */
import type { Intent } from "matrix-appservice-bridge";
import type { BridgeConfig } from "../../config/schema.js";
import { CHANNEL_NAME } from "../../config/schema.js";
import { isValidChannelKey } from "../../format/ircText.js";
import { isValidNick } from "../../format/nick.js";
import type { NetworkPool } from "../../irc/NetworkPool.js";
import type { WhoisResult } from "../../irc/ServerCommands.js";
import type { Ghosts } from "../../matrix/Ghosts.js";
import type { SecretBox } from "../../security/SecretBox.js";
import type { PortalOpener } from "../Portals.js";
import type { RoomLinks } from "../RoomLinks.js";
import { rawCommandRefusal, words } from "./parse.js";

export interface AdminDeps {
  config: BridgeConfig;
  links: RoomLinks;
  /** Opens portals on behalf of the user running the command (rate-limited per user). */
  portals: PortalOpener;
  ghosts: Ghosts;
  secrets: SecretBox | null;
  bot(): Intent;
  version: string;
  feature(userId: string, name: string): boolean;
  setFeature(userId: string, name: string, on: boolean): Promise<void>;
  /** IRC nicks (as typed) a user ignores on a network, and replacing that list. */
  ignored(userId: string, networkId: string): string[];
  setIgnored(userId: string, networkId: string, nicks: string[]): Promise<void>;
}

/** Nicks one user may ignore per network (the list is stored with the user). */
export const MAX_IGNORED = 500;

export interface CommandContext {
  userId: string;
  roomId: string;
  eventId: string;
  rest: string;
}

export interface Command {
  usage: string;
  help: string;
  /** Whether the command concerns one network (and takes the optional network argument). */
  network: boolean;
  run(ctx: CommandContext, deps: AdminDeps, pool: NetworkPool): Promise<string>;
}

/** Per-user switches, with their defaults. */
export const FEATURES: Record<string, { default: boolean; help: string }> = {
  mentions: { default: true, help: "IRC messages that say your nick mention (ping) you in Matrix" },
};

const BRIDGED_CHANNEL_CHECK = (deps: AdminDeps, pool: NetworkPool) => (channel: string) =>
  deps.links.roomsOf(pool.networkId, pool.bot.casefold(channel)).length > 0;

function requireChannel(pool: NetworkPool, channel: string | undefined, usage: string): string {
  if (!channel) throw new Error(`usage: ${usage}`);
  if (!CHANNEL_NAME.test(channel) || !pool.bot.chanTypes.includes(channel[0])) throw new Error(`${channel} is not a channel name on ${pool.config.name}`);
  return channel;
}

/** The user's channels that are still bridged, with their keys, for rejoining. */
function bridgedChannelsOf(deps: AdminDeps, pool: NetworkPool, userId: string): { name: string; key: string | null }[] {
  return (pool.recordOf(userId)?.channels ?? []).flatMap((name) => {
    const folded = pool.bot.casefold(name);
    return deps.links.roomsOf(pool.networkId, folded).length > 0 ? [{ name, key: deps.links.keyOf(pool.networkId, folded) }] : [];
  });
}

/**
 * Takes a user out of the rooms of channels they left on IRC, so both sides agree. Returns
 * a sentence about the rooms the bot may not remove them from (it needs the power to kick).
 */
async function removeFromRooms(deps: AdminDeps, pool: NetworkPool, userId: string, channels: string[], reason: string): Promise<string> {
  const rooms = channels.flatMap((c) => deps.links.roomsOf(pool.networkId, pool.bot.casefold(c)));
  const kept: string[] = [];
  await Promise.all(
    rooms.map((roomId) =>
      deps
        .bot()
        .kick(roomId, userId, reason)
        .catch((err: Error) => {
          if (!/not in the room|not joined|M_NOT_FOUND/i.test(err.message)) kept.push(roomId);
        }),
    ),
  );
  return kept.length ? ` The bridge may not remove you from ${kept.join(", ")}: leave ${kept.length > 1 ? "them" : "it"} yourself, or you will rejoin on your next message there.` : "";
}

function formatWhois(w: WhoisResult, networkName: string): string {
  const lines = [`${w.nick} (${w.nick}!${w.ident}@${w.hostname}) on ${networkName}`, `Real name: ${w.realName}`];
  if (w.account) lines.push(`Logged in as: ${w.account}`);
  if (w.channels.length) lines.push(`Channels: ${w.channels.join(" ")}`);
  if (w.server) lines.push(`Server: ${w.server}`);
  if (w.idleSeconds !== null) lines.push(`Idle: ${w.idleSeconds} s`);
  if (w.away) lines.push(`Away: ${w.away}`);
  return lines.join("\n");
}

export const COMMANDS: Record<string, Command> = {
  nick: {
    usage: "!nick [network] [nick]",
    help: "Shows your IRC nick, or changes it now and keeps it across reconnects and restarts.",
    network: true,
    async run({ userId, rest }, _deps, pool) {
      const [nick] = words(rest);
      const record = pool.recordOf(userId);
      if (!nick) {
        const now = pool.nickOf(userId);
        return now ? `Your nick on ${pool.config.name} is ${now}.` : `You are not connected to ${pool.config.name}${record ? `; your nick will be ${record.nick}` : ""}.`;
      }
      if (!isValidNick(nick)) throw new Error(`${nick} is not a valid IRC nick (a letter or one of []\\\`_^{|} first, then also digits and -)`);
      const previous = record?.nick ?? null;
      await pool.updateRecord(userId, { nick });
      try {
        const connection = await pool.connectionFor(userId);
        if (!connection.isSelf(nick)) await connection.commands.changeNick(nick);
      } catch (err) {
        if (previous) await pool.updateRecord(userId, { nick: previous });
        throw new Error(`${pool.config.name} refused the nick ${nick}: ${(err as Error).message}`);
      }
      return `Your nick on ${pool.config.name} is now ${nick}; it is kept across reconnects.`;
    },
  },
  join: {
    usage: "!join [network] <#channel> [key]",
    help: "Joins a channel: creates its room if there is none and invites you to it.",
    network: true,
    async run({ userId, rest }, deps, pool) {
      const [channelArg, key] = words(rest);
      const channel = requireChannel(pool, channelArg, this.usage);
      if (key !== undefined && !isValidChannelKey(key)) throw new Error("that is not a valid channel key (1 to 23 characters, no spaces, commas, colons or line breaks)");
      const folded = pool.bot.casefold(channel);
      let rooms = deps.links.roomsOf(pool.networkId, folded);
      let kept = "";
      if (rooms.length === 0) {
        // The portal stores the key only once the bot's JOIN with it succeeded.
        rooms = [await deps.portals.open(pool.networkId, channel, null, key ?? null)];
        if (key && !deps.secrets) kept = " The channel key is kept in memory only (the bridge has no credentials.keyFile): after a restart, !join it again.";
      } else if (key) {
        // A bridged channel's stored key is shared by everyone in its rooms: a key given here
        // is used for this user's own JOIN, and replaces the stored one only when the bot,
        // out of the channel, gets in with it (so IRC itself accepted it).
        await pool.join(userId, channel, key);
        if (!pool.bot.isJoined(channel)) {
          await pool.bot.join(channel, key);
          await deps.links.setKey(pool.networkId, folded, key);
          kept = " IRC accepted the key: the bridge uses it from now on.";
        }
      }
      const invited: string[] = [];
      for (const roomId of rooms) {
        await deps.bot().invite(roomId, userId).then(
          () => invited.push(roomId),
          (err: Error) => {
            if (!/already in the room|is already joined/i.test(err.message)) throw err;
          },
        );
      }
      return invited.length > 0 ? `Invited you to the room of ${channel}: ${invited.join(", ")}.${kept}` : `You are already in the room of ${channel}.${kept}`;
    },
  },
  part: {
    usage: "!part [network] <#channel>",
    help: "Leaves a channel on IRC, and its rooms.",
    network: true,
    async run({ userId, rest }, deps, pool) {
      const channel = requireChannel(pool, words(rest)[0], this.usage);
      pool.part(userId, channel, "Left with !part");
      const kept = await removeFromRooms(deps, pool, userId, [channel], `You left ${channel} with !part`);
      return `You left ${channel} on ${pool.config.name}.${kept}`;
    },
  },
  listrooms: {
    usage: "!listrooms [network]",
    help: "Lists your channels on a network and their rooms.",
    network: true,
    async run({ userId }, deps, pool) {
      const channels = pool.recordOf(userId)?.channels ?? [];
      if (channels.length === 0) return `You are in no channels on ${pool.config.name}.`;
      const lines = channels.map((c) => {
        const rooms = deps.links.roomsOf(pool.networkId, pool.bot.casefold(c));
        return `${c}: ${rooms.length ? rooms.join(", ") : "no room"}`;
      });
      return `Your channels on ${pool.config.name}:\n${lines.join("\n")}`;
    },
  },
  whois: {
    usage: "!whois [network] <nick|@matrix_user:server>",
    help: "WHOIS of an IRC nick, or the IRC nick of a Matrix user.",
    network: true,
    async run({ rest }, deps, pool) {
      const [target] = words(rest);
      if (!target) throw new Error(`usage: ${this.usage}`);
      let nick = target;
      if (target.startsWith("@")) {
        const ghost = deps.ghosts.parse(target);
        if (!ghost) {
          const own = pool.nickOf(target) ?? pool.recordOf(target)?.nick;
          return own ? `${target} is ${own} on ${pool.config.name}${pool.nickOf(target) ? "" : " (not connected now)"}.` : `${target} has no IRC nick on ${pool.config.name}.`;
        }
        nick = ghost.nick;
      } else if (!isValidNick(target)) throw new Error(`${JSON.stringify(target)} is not a valid IRC nick`);
      await pool.bot.whenConnected(pool.config.connectTimeoutMs);
      const result = await pool.bot.commands.whois(nick);
      return result ? formatWhois(result, pool.config.name) : `${nick} is not on ${pool.config.name}.`;
    },
  },
  cmd: {
    usage: "!cmd [network] <COMMAND> [arguments...]",
    help: "Sends one raw IRC command over your connection (e.g. !cmd AWAY :brb) and shows the server's answer as it wrote it.",
    network: true,
    async run({ userId, rest }, deps, pool) {
      const refusal = rawCommandRefusal(rest, BRIDGED_CHANNEL_CHECK(deps, pool));
      if (refusal) throw new Error(refusal);
      const connection = await pool.connectionFor(userId);
      const answer = await connection.commands.rawCommand(rest);
      return answer.length > 0 ? `${pool.config.name} answered:\n${answer.join("\n")}` : `Sent. ${pool.config.name} did not answer.`;
    },
  },
  username: {
    usage: "!username [network] <account>",
    help: "The account name to log in with (SASL, or NickServ IDENTIFY); by default your nick.",
    network: true,
    async run({ userId, rest }, _deps, pool) {
      const [account] = words(rest);
      if (!account || !/^[^\s:]{1,64}$/.test(account)) throw new Error(`usage: ${this.usage} (one word, no colon)`);
      await pool.updateRecord(userId, { account });
      return `You will log in to ${pool.config.name} as ${account} from your next connect (!reconnect to do it now).`;
    },
  },
  storepass: {
    usage: "!storepass [network] <password>",
    help: "Stores your IRC password, encrypted, used on every connect. The message is removed once read.",
    network: true,
    async run({ userId, rest }, deps, pool) {
      if (!deps.secrets) throw new Error("the bridge cannot store passwords: its admin has not configured credentials.keyFile");
      if (!rest) throw new Error(`usage: ${this.usage}`);
      if (/[\r\n\0]/.test(rest)) throw new Error("a password cannot hold line breaks or NUL characters: IRC could not take it");
      await pool.updateRecord(userId, { password: deps.secrets.seal(rest) });
      const stored = `Your password for ${pool.config.name} is stored, encrypted. It is used from your next connect (!reconnect to do it now).`;
      if (pool.config.tls.enabled) return stored;
      return `${stored}\n⚠️ Warning: the bridge connects to ${pool.config.name} without TLS, so your password crosses the network in clear text and anyone on the way can read it. Use !removepass if that is not acceptable, and ask the bridge's admin to enable tls for ${pool.config.name}.`;
    },
  },
  removepass: {
    usage: "!removepass [network]",
    help: "Forgets your stored IRC password.",
    network: true,
    async run({ userId }, _deps, pool) {
      await pool.updateRecord(userId, { password: null });
      return `Your password for ${pool.config.name} is forgotten.`;
    },
  },
  reconnect: {
    usage: "!reconnect [network]",
    help: "Drops your IRC connection and connects again, rejoining your channels.",
    network: true,
    async run({ userId }, deps, pool) {
      const connection = await pool.reconnectUser(userId, bridgedChannelsOf(deps, pool, userId));
      return `Reconnected to ${pool.config.name} as ${connection.nick}.`;
    },
  },
  quit: {
    usage: "!quit [network]",
    help: "Disconnects you from a network and takes you out of its bridged rooms.",
    network: true,
    async run({ userId }, deps, pool) {
      const channels = await pool.quitUser(userId, "Left with !quit");
      const kept = await removeFromRooms(deps, pool, userId, channels, `You quit ${pool.config.name} with !quit`);
      return `You are disconnected from ${pool.config.name}${channels.length ? ` and out of the rooms of ${channels.join(", ")}` : ""}.${kept}`;
    },
  },
  ignore: {
    usage: "!ignore [network] [nick]",
    help: "Ignores an IRC nick: their private messages no longer open or reach a room for you. Alone, lists the nicks you ignore.",
    network: true,
    async run({ userId, rest }, deps, pool) {
      const [nick] = words(rest);
      const list = deps.ignored(userId, pool.networkId);
      if (!nick) return list.length > 0 ? `You ignore on ${pool.config.name}: ${list.join(", ")}.` : `You ignore no one on ${pool.config.name}.`;
      if (!isValidNick(nick)) throw new Error(`${nick} is not a valid IRC nick`);
      if (list.some((n) => pool.bot.casefold(n) === pool.bot.casefold(nick))) return `You already ignore ${nick} on ${pool.config.name}.`;
      if (list.length >= MAX_IGNORED) throw new Error(`you already ignore ${MAX_IGNORED} nicks on ${pool.config.name}; !unignore some first`);
      await deps.setIgnored(userId, pool.networkId, [...list, nick]);
      return `You now ignore ${nick} on ${pool.config.name}: their private messages will not reach you (!unignore ${nick} to undo).`;
    },
  },
  unignore: {
    usage: "!unignore [network] <nick>",
    help: "Stops ignoring an IRC nick.",
    network: true,
    async run({ userId, rest }, deps, pool) {
      const [nick] = words(rest);
      if (!nick) throw new Error(`usage: ${this.usage}`);
      const list = deps.ignored(userId, pool.networkId);
      const kept = list.filter((n) => pool.bot.casefold(n) !== pool.bot.casefold(nick));
      if (kept.length === list.length) return `You do not ignore ${nick} on ${pool.config.name}.`;
      await deps.setIgnored(userId, pool.networkId, kept);
      return `You no longer ignore ${nick} on ${pool.config.name}.`;
    },
  },
};

/** Commands that do not concern one network. */
export const GENERAL_COMMANDS: Record<string, { usage: string; help: string; run(ctx: CommandContext, deps: AdminDeps): Promise<string> }> = {
  bridgeversion: {
    usage: "!bridgeversion",
    help: "Shows the bridge's version.",
    async run(_ctx, deps) {
      return `matrix-irc-bridge ${deps.version}`;
    },
  },
  feature: {
    usage: "!feature <name> [on|off]",
    help: `Per-user switches: ${Object.entries(FEATURES).map(([name, f]) => `${name} (${f.help})`).join("; ")}.`,
    async run({ userId, rest }, deps) {
      const [name, value] = words(rest);
      if (!name) return Object.keys(FEATURES).map((f) => `${f}: ${deps.feature(userId, f) ? "on" : "off"}`).join("\n");
      if (!FEATURES[name]) throw new Error(`there is no feature ${name}; features: ${Object.keys(FEATURES).join(", ")}`);
      if (!value) return `${name} is ${deps.feature(userId, name) ? "on" : "off"} (${FEATURES[name].help}).`;
      if (value !== "on" && value !== "off") throw new Error(`usage: ${this.usage}`);
      await deps.setFeature(userId, name, value === "on");
      return `${name} is now ${value}.`;
    },
  },
};
