/**
 * IRCv3 `draft/multiline`: a multi-line message as one BATCH, within the server's advertised
 * `max-bytes` (the message text of the whole batch) and `max-lines`. The test IRCd does not
 * offer the capability, so only this builder is tested (unit tests); the bridge sends plain
 * lines meanwhile. Returns null when the lines do not fit the limits (send them one by one).
 */
export interface MultilineLimits {
  maxBytes: number;
  maxLines?: number;
}

export interface BatchLine {
  command: string;
  words: string[];
  text?: string;
  tags?: Record<string, string>;
}

export function multilineBatch(batchId: string, target: string, lines: string[], limits: MultilineLimits, tags: Record<string, string> = {}): BatchLine[] | null {
  if (lines.length < 2) return null;
  if (limits.maxLines !== undefined && lines.length > limits.maxLines) return null;
  // The text of the batch is the lines joined with LF: that is what max-bytes counts.
  if (Buffer.byteLength(lines.join("\n")) > limits.maxBytes) return null;
  if (lines.some((line) => /[\r\n\0]/.test(line))) return null;
  return [
    { command: "BATCH", words: [`+${batchId}`, "draft/multiline", target], tags },
    ...lines.map((line) => ({ command: "PRIVMSG", words: [target], text: line, tags: { batch: batchId } })),
    { command: "BATCH", words: [`-${batchId}`] },
  ];
}
