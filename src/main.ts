#!/usr/bin/env node
/**
 * The command's entry point. V8 settings come first (v8Settings.ts): some of them only hold if
 * they are in place before the rest of the bridge is loaded, which the import of cli.ts (the
 * command line and everything it runs) then does.
 */
import "./v8Settings.js";

await import("./cli.js");
