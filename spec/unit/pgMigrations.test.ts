/**
 * The PostgreSQL store's schema migrations against a real (throwaway) cluster: applied once and
 * recorded, safe when two processes open together, atomic, and a schema newer than the code
 * stops the start with a clear message.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { createDataStore } from "../../src/store/createStore.js";
import { PgDataStore } from "../../src/store/PgDataStore.js";
import { MIGRATIONS, migrate, SchemaTooNewError } from "../../src/store/pg/migrations.js";
import { parseConfig } from "../../src/config/load.js";
import { PostgresCluster } from "../harness/postgres.js";

describe("PostgreSQL schema migrations", { timeout: 120_000 }, () => {
  const cluster = new PostgresCluster();
  let n = 0;
  const database = () => cluster.createDatabase(`migrations${n++}`);
  const versions = async (url: string) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return (await c.query("SELECT version FROM schema_migrations ORDER BY version")).rows.map((r) => r.version as number);
    } finally {
      await c.end();
    }
  };

  before(() => cluster.start());
  after(() => cluster.stop());

  test("are applied once, recorded, and two stores opening together do not collide", async () => {
    const url = await database();
    const stores = Array.from({ length: 3 }, () => new PgDataStore(url, 2));
    await Promise.all(stores.map((s) => s.open()));
    assert.deepEqual(await versions(url), MIGRATIONS.map((m) => m.version));
    await stores[0].putRecord("k", "a", 1);
    await Promise.all(stores.map((s) => s.close()));
    const again = new PgDataStore(url, 2);
    await again.open();
    assert.deepEqual((await again.getRecord("k", "a"))?.value, 1, "reopening migrates nothing and keeps the data");
    await again.close();
  });

  test("a failing migration leaves nothing of itself (one transaction)", async () => {
    const url = await database();
    const pool = new pg.Pool({ connectionString: url });
    const client = await pool.connect();
    try {
      const broken = [...MIGRATIONS, { version: 99, name: "broken", sql: "CREATE TABLE half_made (x int); SELECT no_such_function();" }];
      await assert.rejects(migrate(client, broken), /no_such_function/);
      const tables = await client.query("SELECT to_regclass('half_made') AS t, to_regclass('schema_migrations') AS m");
      assert.equal(tables.rows[0].t, null);
      assert.equal(tables.rows[0].m, null, "not even the first migration was kept");
    } finally {
      client.release();
      await pool.end();
    }
  });

  test("a schema newer than the bridge knows stops the start with a clear message", async () => {
    const url = await database();
    const store = new PgDataStore(url, 2);
    await store.open();
    await store.close();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query("INSERT INTO schema_migrations (version, name) VALUES (1000, 'from the future')");
    await c.end();
    const later = new PgDataStore(url, 2);
    await assert.rejects(later.open(), (err: Error) => err instanceof SchemaTooNewError && /version 1000, newer than this bridge knows \(1\)/.test(err.message));
    await later.close();
  });

  test("the config picks the engine; postgres needs a connection string", async () => {
    const base = { homeserver: { url: "http://localhost:8008", domain: "localhost" }, networks: { net: { name: "Net", address: "irc.example.org", botNick: "bot", ghostUserTemplate: "irc_net_$NICK", aliasTemplate: "irc_net_$CHANNEL" } } };
    assert.throws(() => parseConfig({ ...base, store: { engine: "postgres" } }), /store.connectionString: is required with engine postgres/);
    assert.throws(() => parseConfig({ ...base, store: { engine: "mysql" } }), /store.engine/);
    const config = parseConfig({ ...base, store: { engine: "postgres", connectionString: await database(), poolSize: 3 } });
    const store = createDataStore(config.store);
    assert.ok(store instanceof PgDataStore);
    await store.open();
    await store.close();
  });
});
