import type { Response } from "express";

/** Sends a Matrix-style error body; never a stack trace or an HTML page. */
export function sendMatrixError(res: Response, status: number, errcode: string, error: string): void {
  res.status(status).json({ errcode, error });
}
