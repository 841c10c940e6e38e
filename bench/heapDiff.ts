/**
 * `node dist/bench/heapDiff.js base.heapsnapshot loaded.heapsnapshot N [top]`: what the heap
 * gained between two snapshots, per unit (e.g. per puppet: N puppets were added between them),
 * grouped by what each object is. Objects are named by their constructor (closures by their
 * function's name); arrays, strings and V8's internal objects by their first retainer
 * (`Client.handlers`, `NetworkInfo.options`, ...), which is where they can be trimmed.
 * Self sizes only: a grouping that holds nothing big itself is not listed.
 *
 * `node dist/bench/heapDiff.js --gone early.heapsnapshot later.heapsnapshot [units] [top]`: the
 * objects of the early snapshot that the later one no longer holds (snapshots of one process
 * keep object ids), grouped the same way: what lived a while and then died, e.g. what the
 * connections in flight during a connect storm hold (BENCH_MID_SNAPSHOT=1 in the pool bench).
 */
import { readFileSync } from "node:fs";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

const LABELLED_BY_RETAINER = new Set(["array", "hidden", "string", "concatenated string", "sliced string", "number", "code", "object shape", "native"]);
/** Generic objects, also named by where they hang (an anonymous closure says little on its own). */
const GENERIC = new Set(["Object", "Array", "fn ", "system / Context", "EE", "Events", "Map", "Set", "Timeout", "(array)"]);

function groups(file: string, skipIds?: Set<number>): Map<string, { count: number; bytes: number }> {
  const snap = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
  const { node_fields, node_types, edge_fields, edge_types } = snap.snapshot.meta;
  const nf = node_fields.length;
  const ef = edge_fields.length;
  const [nType, nName, nSize, nEdges, nId] = ["type", "name", "self_size", "edge_count", "id"].map((f) => node_fields.indexOf(f));
  const [eType, eName, eTo] = ["type", "name_or_index", "to_node"].map((f) => edge_fields.indexOf(f));
  const types = node_types[0];
  const edgeTypes = edge_types[0];
  const { nodes, edges, strings } = snap;
  const count = nodes.length / nf;
  // First strong retainer of each node: its owner's name and the edge's.
  const owner = new Int32Array(count).fill(-1);
  const ownerEdge: (string | number)[] = new Array(count);
  let e = 0;
  for (let n = 0; n < count; n++) {
    const edgeCount = nodes[n * nf + nEdges];
    for (let k = 0; k < edgeCount; k++, e += ef) {
      const type = edgeTypes[edges[e + eType]];
      if (type === "weak" || type === "shortcut") continue;
      const to = edges[e + eTo] / nf;
      if (owner[to] >= 0) continue;
      owner[to] = n;
      ownerEdge[to] = type === "element" || type === "hidden" ? `[${type}]` : strings[edges[e + eName]];
    }
  }
  const nameOf = (n: number) => {
    const type = types[nodes[n * nf + nType]];
    const name = strings[nodes[n * nf + nName]];
    return type === "object" || type === "closure" ? `${type === "closure" ? "fn " : ""}${name}` : `(${type})`;
  };
  const result = new Map<string, { count: number; bytes: number }>();
  for (let n = 0; n < count; n++) {
    if (skipIds?.has(nodes[n * nf + nId])) continue;
    const type = types[nodes[n * nf + nType]];
    let key = nameOf(n);
    if ((LABELLED_BY_RETAINER.has(type) || GENERIC.has(key)) && owner[n] >= 0) {
      let o = owner[n];
      let via = String(ownerEdge[n]);
      // Through internal holders (a property array, a context, a plain object) up to a named object.
      for (let hops = 0; hops < 4 && o >= 0 && (LABELLED_BY_RETAINER.has(types[nodes[o * nf + nType]]) || GENERIC.has(nameOf(o))); hops++) {
        via = `${ownerEdge[o]}.${via}`;
        o = owner[o];
      }
      key = `${key} in ${o >= 0 ? nameOf(o) : "?"}.${via}`;
    }
    const entry = result.get(key) ?? { count: 0, bytes: 0 };
    entry.count += 1;
    entry.bytes += nodes[n * nf + nSize];
    result.set(key, entry);
  }
  return result;
}

/** The ids of every object in a snapshot. */
function ids(file: string): Set<number> {
  const snap = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
  const { node_fields } = snap.snapshot.meta;
  const nf = node_fields.length;
  const nId = node_fields.indexOf("id");
  const out = new Set<number>();
  for (let i = nId; i < snap.nodes.length; i += nf) out.add(snap.nodes[i]);
  return out;
}

function gone(early: string, later: string, units: number, top: number): void {
  const rows = [...groups(early, ids(later))].map(([key, g]) => ({ key, count: g.count / units, bytes: g.bytes / units }));
  rows.sort((x, y) => y.bytes - x.bytes);
  const total = rows.reduce((sum, r) => sum + r.bytes, 0);
  process.stdout.write(`self size of objects gone since the early snapshot, per unit (${units} units): ${(total / 1024).toFixed(2)} KiB\n`);
  process.stdout.write(`${"bytes".padStart(8)} ${"count".padStart(7)}  what\n`);
  for (const r of rows.slice(0, top)) process.stdout.write(`${r.bytes.toFixed(0).padStart(8)} ${r.count.toFixed(2).padStart(7)}  ${r.key}\n`);
}

function main(): void {
  if (process.argv[2] === "--gone") {
    const [early, later, perArg, topArg] = process.argv.slice(3);
    if (!early || !later) throw new Error("usage: heapDiff --gone early.heapsnapshot later.heapsnapshot [units] [top]");
    return gone(early, later, Number(perArg ?? 1), Number(topArg ?? 40));
  }
  const [base, loaded, perArg, topArg] = process.argv.slice(2);
  if (!base || !loaded) throw new Error("usage: heapDiff base.heapsnapshot loaded.heapsnapshot [units] [top]");
  const units = Number(perArg ?? 1);
  const top = Number(topArg ?? 40);
  const before = groups(base);
  const after = groups(loaded);
  const rows = [...after].map(([key, a]) => {
    const b = before.get(key) ?? { count: 0, bytes: 0 };
    return { key, count: (a.count - b.count) / units, bytes: (a.bytes - b.bytes) / units };
  });
  const total = rows.reduce((sum, r) => sum + r.bytes, 0) - [...before].filter(([k]) => !after.has(k)).reduce((sum, [, b]) => sum + b.bytes / units, 0);
  rows.sort((x, y) => y.bytes - x.bytes);
  process.stdout.write(`self size gained per unit (${units} units): ${(total / 1024).toFixed(2)} KiB\n`);
  process.stdout.write(`${"bytes".padStart(8)} ${"count".padStart(7)}  what\n`);
  for (const r of rows.slice(0, top)) process.stdout.write(`${r.bytes.toFixed(0).padStart(8)} ${r.count.toFixed(2).padStart(7)}  ${r.key}\n`);
}

main();
