/**
 * Matrix replies, threads and edits as the IRC side needs them: which event a message answers
 * (a reply, or the root of its thread), and its text without Matrix's reply fallback.
 */
export interface Relation {
  /** The event this message replies to (a thread's root for a message in a thread). */
  replyTo: string | null;
  /** The event this message edits (`m.replace`), if it is an edit. */
  replaces: string | null;
}

export function relationOf(content: Record<string, unknown>): Relation {
  const rel = (content["m.relates_to"] ?? {}) as Record<string, unknown>;
  const inReplyTo = (rel["m.in_reply_to"] ?? {}) as Record<string, unknown>;
  const replaces = rel.rel_type === "m.replace" && typeof rel.event_id === "string" ? rel.event_id : null;
  if (rel.rel_type === "m.thread" && typeof rel.event_id === "string") return { replyTo: rel.event_id, replaces };
  return { replyTo: typeof inReplyTo.event_id === "string" ? inReplyTo.event_id : null, replaces };
}

/**
 * A plain body without Matrix's reply fallback: the leading `> ` lines (the first one
 * `> <@user:server> ...`) and the blank line after them.
 */
export function stripReplyFallback(body: string): string {
  const lines = body.split("\n");
  if (!/^> <[@*]?[^>]*>/.test(lines[0] ?? "") && !/^> \* <[@*]?[^>]*>/.test(lines[0] ?? "")) return body;
  let i = 0;
  while (i < lines.length && lines[i].startsWith(">")) i++;
  if (i < lines.length && lines[i].trim() === "") i++;
  return lines.slice(i).join("\n");
}

/** Matrix's HTML reply fallback (`<mx-reply>…</mx-reply>`) removed. */
export function stripMxReply(html: string): string {
  return html.replace(/<mx-reply>[\s\S]*?<\/mx-reply>/gi, "");
}

/** The Matrix user a body's reply fallback names (`> <@user:server> ...`), if any. */
export function fallbackSender(body: string): string | null {
  return /^> <(@[^>\s]+)>/.exec(body)?.[1] ?? null;
}
