/** The one place that picks the store engine from the config (`store.engine`). */
import type { BridgeConfig } from "../config/schema.js";
import type { DataStore } from "./DataStore.js";
import { NedbDataStore } from "./NedbDataStore.js";
import { PgDataStore } from "./PgDataStore.js";

export function createDataStore(config: BridgeConfig["store"]): DataStore {
  switch (config.engine) {
    case "postgres":
      // The schema refuses a missing connection string; this keeps the type narrow.
      if (!config.connectionString) throw new Error("store.connectionString is required with engine postgres");
      return new PgDataStore(config.connectionString, config.poolSize);
    case "nedb":
      return new NedbDataStore(config.dataDir);
  }
}
