/** Small helpers of the PostgreSQL store. */
import pg from "pg";

const INT8 = 20;

/**
 * Type parsers for this store's pool only (not pg's global ones): bigint columns hold
 * milliseconds and serials, well inside a JS number, and read back as numbers like NeDB's.
 */
export const int8AsNumber = {
  getTypeParser(oid: number, format?: string) {
    if (oid === INT8) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid as never, (format ?? "text") as "text");
  },
} as unknown as pg.CustomTypesConfig;

export const DELETE_BATCH = 5_000;

/**
 * Deletes the rows of `table` matching `where` a batch at a time, each batch its own short
 * transaction, so pruning 100,000 message links never holds locks (or a long WAL record)
 * that would stall the bridge's writes. Returns how many rows went.
 */
export async function deleteInBatches(pool: pg.Pool, table: string, where: string, params: unknown[], batch = DELETE_BATCH): Promise<number> {
  let total = 0;
  for (;;) {
    const res = await pool.query(`DELETE FROM ${table} WHERE ctid IN (SELECT ctid FROM ${table} WHERE ${where} LIMIT ${batch})`, params);
    total += res.rowCount ?? 0;
    if ((res.rowCount ?? 0) < batch) return total;
  }
}
