import type { ServerResponse } from "node:http";

/** Answers with a JSON body (plain Node response calls: express's responses are ServerResponses too). */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader("Content-Type", "application/json; charset=utf-8");
  res.setHeader("Content-Length", Buffer.byteLength(text));
  res.end(text);
}

/** Sends a Matrix-style error body; never a stack trace or an HTML page. */
export function sendMatrixError(res: ServerResponse, status: number, errcode: string, error: string): void {
  sendJson(res, status, { errcode, error });
}
