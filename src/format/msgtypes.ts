import type { IrcMessageKind } from "../irc/IrcConnection.js";
import { mediaFacts, mediaKindOf, mediaLine, mediaNoun, parseMxc } from "./media.js";

/** The Matrix msgtype for each kind of IRC line, and back (other msgtypes have no IRC kind). */
export const MSGTYPE_OF_KIND: Record<IrcMessageKind, string> = { privmsg: "m.text", notice: "m.notice", action: "m.emote" };

export function ircKindOf(msgtype: unknown): IrcMessageKind | undefined {
  return (Object.keys(MSGTYPE_OF_KIND) as IrcMessageKind[]).find((kind) => MSGTYPE_OF_KIND[kind] === msgtype);
}

/** Makes the public link to a file of an event (MediaSigner); null: the bridge serves no media. */
export interface MediaLinker {
  link(ref: { mxc: string; eventId: string; roomId: string; filename: string; originalEventId?: string }): string;
}

/** What a Matrix message is on IRC: a kind of line and the content to build it from, or why it is not sent. */
export type IrcBound = { kind: IrcMessageKind; content: Record<string, unknown> } | { refused: string };

export interface MessageEvent {
  type?: unknown;
  event_id?: unknown;
  room_id?: unknown;
  content?: unknown;
}

/**
 * The one place that decides what a Matrix message (m.room.message or m.sticker) becomes on
 * IRC, for channels and PMs alike: text, notices and emotes as they are; files as one ACTION
 * line with a link the bridge serves (an edit's link names the edit and the event it edits:
 * redacting either ends it); everything else refused with the reason the sender is told.
 */
export function ircMessageOf(event: MessageEvent, media: MediaLinker | null): IrcBound {
  const content = (event.content ?? {}) as Record<string, unknown>;
  const media_ = mediaKindOf(event.type, content.msgtype);
  if (!media_) {
    const kind = ircKindOf(content.msgtype);
    if (!kind || typeof content.body !== "string") return { refused: `messages of type ${String(content.msgtype)} are not bridged to IRC yet; it was not sent.` };
    return { kind, content };
  }
  const relation = (content["m.relates_to"] ?? {}) as Record<string, unknown>;
  const newContent = content["m.new_content"];
  const isEdit = relation.rel_type === "m.replace" && typeof relation.event_id === "string" && !!newContent && typeof newContent === "object";
  const described = isEdit ? (newContent as Record<string, unknown>) : content;
  const eventId = String(event.event_id);
  const originalEventId = isEdit ? (relation.event_id as string) : undefined;
  const noun = mediaNoun(media_);
  if (described.file !== undefined && described.url === undefined) {
    return { refused: `${noun} was not sent to IRC: it is end-to-end encrypted, and this bridge does no end-to-end encryption.` };
  }
  if (!media) {
    return { refused: `${mediaNoun(media_, true)} are not bridged to IRC: the bridge's operator must set media.publicUrl in its config for that; it was not sent.` };
  }
  if (!parseMxc(described.url)) return { refused: `${noun} was not sent to IRC: it has no valid mxc:// URL.` };
  const facts = mediaFacts(media_, described);
  const ref = { mxc: described.url as string, eventId, roomId: String(event.room_id), filename: facts.filename };
  const link = media.link(originalEventId === undefined ? ref : { ...ref, originalEventId });
  const line = mediaLine(media_, facts, link, described["org.matrix.msc3245.voice"] !== undefined);
  const bound: Record<string, unknown> = { msgtype: "m.emote", body: line };
  if (content["m.relates_to"] !== undefined) bound["m.relates_to"] = content["m.relates_to"];
  if (isEdit) bound["m.new_content"] = { msgtype: "m.emote", body: line };
  return { kind: "action", content: bound };
}
