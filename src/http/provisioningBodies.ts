/**
 * Request bodies of the provisioning API, with the reference bridge's field names. Fields are
 * typed strictly; fields a client adds beyond them are ignored (the reference bridge ignores
 * them too, and clients written for it may send some).
 */
import { z } from "zod";
import { CHANNEL_NAME, ROOM_ID } from "../config/schema.js";

export const USER_ID = /^@[^:\s]+:[A-Za-z0-9.:[\]-]+$/;

const server = z.string().min(1).max(255).regex(/^[A-Za-z0-9.:[\]_-]+$/, "expected the IRC server's host name");
const channel = z.string().regex(CHANNEL_NAME, "expected a channel name such as #chan");
const roomId = z.string().max(255).regex(ROOM_ID, "expected a room ID such as !abc:example.org");
const userId = z.string().max(255).regex(USER_ID, "expected a user ID such as @alice:example.org");
const key = z.string().min(1).max(100).regex(/^[^\s,\0\r\n]+$/, "expected a channel key without spaces or commas").nullish();

export const queryLinkBody = z.object({
  remote_room_server: server,
  remote_room_channel: channel,
  key,
});

export const linkBody = z.object({
  remote_room_server: server,
  remote_room_channel: channel,
  matrix_room_id: roomId,
  op_nick: z.string().min(1).max(64).regex(/^[^\s,!@\0\r\n]+$/, "expected an IRC nick"),
  key,
  user_id: userId.optional(),
});

export const unlinkBody = z.object({
  remote_room_server: server,
  remote_room_channel: channel,
  matrix_room_id: roomId,
  user_id: userId.optional(),
});

export const exchangeOpenIdBody = z.object({
  matrixServer: z.string().min(1).max(255),
  openIdToken: z.string().min(1).max(1024),
});

export const roomIdParam = roomId;

/** The first problem of a failed parse, as "field: what was expected". */
export function describeBodyError(error: z.ZodError): string {
  const issue = error.issues[0];
  const path = issue.path.map(String).join(".");
  const what = issue.code === "invalid_type" && issue.input === undefined ? "is required" : issue.message.replace(/^Invalid input: /, "");
  return path ? `${path}: ${what}` : what;
}
