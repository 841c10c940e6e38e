/**
 * A deterministic generator of malformed appservice requests, all carrying the right
 * homeserver token unless the case is about the token: named cases (content types, bodies
 * that are not JSON or not the right JSON, txn IDs, paths, methods, headers, sizes) and
 * seeded mutations of a valid transaction. Every one of them deserves a 4xx with a JSON
 * `{errcode, error}`.
 */
import { buildRequest } from "../harness/rawHttp.js";
import { prng } from "../harness/prng.js";

export interface HostileCase {
  name: string;
  bytes: Buffer;
}

export interface CaseContext {
  token: string;
  roomId: string;
  sender: string;
}

const TXN = "/_matrix/app/v1/transactions";


const NOT_STRINGS: unknown[] = [42, 0, -1.5, null, true, false, {}, { a: 1 }, [], ["x"]];
const NOT_OBJECTS: unknown[] = ["text", "", 42, null, true, [], [{}], ["a"]];
const NOT_ARRAYS: unknown[] = ["text", 42, null, true, {}, { 0: {} }];
/** Raw control characters: invalid anywhere in JSON text (inside strings and between tokens). */
const CONTROL = ["\u0000", "\u0001", "\u0007", "\u0008", "\u000b", "\u000c", "\u001b", "\u001f"];

export function buildCases(ctx: CaseContext, total: number, seed = 9): HostileCase[] {
  const rand = prng(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)];
  let n = 0;
  const txnPath = () => `${TXN}/hostile-${seed}-${n++}`;
  const auth = { Authorization: `Bearer ${ctx.token}` };
  const json = { ...auth, "Content-Type": "application/json" };
  const validEvent = (): Record<string, unknown> => ({
    type: "m.room.message",
    event_id: `$hostile${n}:localhost`,
    room_id: ctx.roomId,
    sender: ctx.sender,
    origin_server_ts: 1_700_000_000_000,
    content: { msgtype: "m.text", body: "must never reach IRC" },
  });
  const put = (name: string, body: unknown, headers: Record<string, string> = json, path = txnPath()): HostileCase => ({
    name,
    bytes: buildRequest("PUT", path, headers, typeof body === "string" || Buffer.isBuffer(body) ? (body as string | Buffer) : JSON.stringify(body)),
  });
  const req = (name: string, method: string, path: string, headers: Record<string, string> = json, body: string | Buffer = ""): HostileCase => ({
    name,
    bytes: buildRequest(method, path, headers, body),
  });
  const good = () => JSON.stringify({ events: [validEvent()] });
  const cases: HostileCase[] = [];
  const add = (c: HostileCase) => cases.push(c);

  // Content types.
  for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx", "text/json", "application/json; charset=latin1", "application/json; charset=utf-16", "*/*", ""]) {
    add(put(`content type ${JSON.stringify(type)}`, good(), { ...auth, "Content-Type": type }));
  }
  add(put("no content type", good(), auth));
  add(put("no content type, empty body", "", auth));
  add(put("form body", "events=1&x=2", { ...auth, "Content-Type": "application/x-www-form-urlencoded" }));
  // Not JSON.
  for (const body of ["{not json", "", " ", "nul", "{", "[", "}", "{\"events\": [}", "{'events': []}", "{\"events\": [],}", "\u0000", "\ufeff{}x", "NaN", "undefined", "{\"events\":[{\"a\":1e999999}]"]) {
    add(put(`not JSON ${JSON.stringify(body.slice(0, 20))}`, body));
  }
  add(put("random bytes", Buffer.from(Array.from({ length: 512 }, () => Math.floor(rand() * 256)))));
  add(put("invalid UTF-8 outside strings", Buffer.from([0x7b, 0xff, 0xfe, 0x7d])));
  // JSON, but not an object.
  for (const body of ["[]", "[{\"events\":[]}]", "\"events\"", "42", "true", "false", "null", "-0", "1e5"]) add(put(`JSON ${body}`, body));
  // An object without a list of events.
  add(put("empty object", "{}"));
  for (const value of NOT_ARRAYS) add(put(`events ${JSON.stringify(value)}`, { events: value }));
  for (const value of NOT_OBJECTS) add(put(`an event ${JSON.stringify(value)}`, { events: [validEvent(), value] }));
  for (const field of ["type", "room_id", "sender", "event_id"]) {
    for (const value of NOT_STRINGS) add(put(`${field} ${JSON.stringify(value)}`, { events: [{ ...validEvent(), [field]: value }] }));
    add(put(`${field} missing`, { events: [Object.fromEntries(Object.entries(validEvent()).filter(([k]) => k !== field))] }));
  }
  for (const value of NOT_OBJECTS) add(put(`content ${JSON.stringify(value)}`, { events: [{ ...validEvent(), content: value }] }));
  add(put("content missing", { events: [{ ...validEvent(), content: undefined }] }));
  for (const value of NOT_STRINGS) add(put(`state_key ${JSON.stringify(value)}`, { events: [{ ...validEvent(), type: "m.room.member", state_key: value, content: { membership: "join" } }] }));
  for (const value of ["x", 42, [], null]) add(put(`unsigned ${JSON.stringify(value)}`, { events: [{ ...validEvent(), unsigned: value }] }));
  // Ephemeral events that are not lists of events.
  for (const key of ["de.sorunome.msc2409.ephemeral", "ephemeral"]) {
    for (const value of [...NOT_ARRAYS, [1], ["x"], [null], [{ content: {} }], [{ type: 5, content: {} }], [{ type: "m.typing", content: "x" }]]) {
      add(put(`${key} ${JSON.stringify(value)}`, { events: [], [key]: value }));
    }
  }
  // Sizes and depth.
  add(put("a 12 MB body", { events: [{ ...validEvent(), content: { body: "x".repeat(12_000_000) } }] }));
  add(req("50 MB announced, little sent", "PUT", txnPath(), { ...json, "Content-Length": String(50_000_000) }, "{\"events\":["));
  add(put("deeply nested content", `{"events":[{"type":"m.room.message","event_id":"$d","room_id":"${ctx.roomId}","sender":"${ctx.sender}","content":${"{\"a\":".repeat(20_000)}1${"}".repeat(20_000)}}]}`));
  add(put("deeply nested arrays", `{"events":${"[".repeat(200_000)}${"]".repeat(200_000)}}`));
  add(put("deeply nested, unclosed", "[".repeat(500_000)));
  add(put("100,000 events that are numbers", `{"events":[${Array(100_000).fill("1").join(",")}]}`));
  // Transaction IDs.
  add(req("empty txnId", "PUT", `${TXN}/`, json, good()));
  add(req("no txnId", "PUT", TXN, json, good()));
  add(put("very long txnId", good(), json, `${TXN}/${"a".repeat(5_000)}`));
  add(put("100 KB txnId", good(), json, `${TXN}/${"b".repeat(100_000)}`));
  for (const id of ["%00", "a%0D%0AX-Injected:%201", "a%20b", "%3Cscript%3E", "..%2F..%2Fetc%2Fpasswd", "%2F", "%C3%A9t%C3%A9", "%F0%9F%98%80", "a%09b", "%7F", "..", "."]) {
    add(put(`txnId ${id}`, good(), json, `${TXN}/${id}`));
  }
  // Paths: traversal, bad percent-encoding, legacy and unknown routes.
  for (const path of [
    `${TXN}/../../../etc/passwd`,
    "/_matrix/app/v1/../../etc/passwd",
    `${TXN}/a/b`,
    `${TXN}/%E0%A4%A`,
    `${TXN}/%`,
    `${TXN}/%ZZ`,
    "/_matrix/app/v1/transactions%2Fx",
    "//_matrix/app/v1/transactions/x",
    "/_matrix/app/v2/transactions/x",
    "/_MATRIX/APP/V1/TRANSACTIONS/x",
    "/transactions/legacy-1",
    "/transactions/%E0%A4%A",
  ]) {
    add(req(`PUT ${path.slice(0, 60)}`, "PUT", path, json, good()));
  }
  for (const path of ["/users/@irc_testnet_x:localhost", "/rooms/%23irc_testnet_%23x:localhost", "/_matrix/app/v1/users/%E0%A4%A", "/_matrix/app/v1/rooms/%E0%A4%A", "/_matrix/app/v1/users/", "/_matrix/app/v1/users/notauser", "/_matrix/app/v1/rooms/notanalias", "/_matrix/app/v1/thirdparty/protocol/irc", "/_matrix/app/v1/thirdparty/user/irc", "/_matrix/app/unstable/thirdparty/location", "/_matrix/app/v1/nothing"]) {
    add(req(`GET ${path}`, "GET", path, auth));
  }
  // Methods.
  for (const method of ["GET", "DELETE", "POST", "PATCH", "OPTIONS", "PROPFIND", "FOO", "put"]) {
    add(req(`${method} on a transaction`, method, txnPath(), json, good()));
  }
  for (const method of ["GET", "PUT", "DELETE"]) add(req(`${method} on ping`, method, "/_matrix/app/v1/ping", json, "{}"));
  add(req("ping with a body that is not JSON", "POST", "/_matrix/app/v1/ping", json, "{x"));
  add(req("ping with a list", "POST", "/_matrix/app/v1/ping", json, "[1]"));
  // Query strings.
  for (const query of ["?access_token[a]=b", "?access_token=a&access_token=b", "?access_token[]=x", "?access_token=%E0%A4%A", "?a=%E0%A4%A", `?${Array.from({ length: 5_000 }, (_, i) => `p${i}=1`).join("&")}`, "?a[b][c][d][e][f][g]=1", `?access_token=${"x".repeat(50_000)}`]) {
    add(req(`query ${query.slice(0, 40)} without a header`, "PUT", `${txnPath()}${query}`, { "Content-Type": "application/json" }, good()));
    add(req(`query ${query.slice(0, 40)} with the token and a bad body`, "PUT", `${txnPath()}${query}`, json, "{x"));
  }
  // Headers.
  for (const value of ["Bearer", "Bearer ", "Basic Zm9vOmJhcg==", `Bearer ${ctx.token} extra`, `bearer ${ctx.token}x`, `Bearer ${"x".repeat(10_000)}`, `Bearer ${ctx.token}\u00e9`]) {
    add(req(`Authorization ${value.slice(0, 30)}`, "PUT", txnPath(), { "Content-Type": "application/json", Authorization: value }, good()));
  }
  add(req("60 KB header", "PUT", txnPath(), { ...json, "X-Big": "y".repeat(60_000) }, good()));
  add(req("a control character in a header", "PUT", txnPath(), { ...json, "X-Odd": "a\u0001b" }, good()));
  add(req("a header without a colon", "PUT", txnPath(), { ...json, "X-No-Colon-Here": "" }, "{x"));
  add(req("Content-Length not a number", "PUT", txnPath(), { ...json, "Content-Length": "abc" }, good()));
  add(req("negative Content-Length", "PUT", txnPath(), { ...json, "Content-Length": "-5" }, good()));
  add(req("two Content-Lengths", "PUT", txnPath(), { ...json, "Content-Length": "2", "content-length": "3" }, "{}x"));
  add(req("Content-Length and chunked", "PUT", txnPath(), { ...json, "Content-Length": "2", "Transfer-Encoding": "chunked" }, "2\r\n{}\r\n0\r\n\r\n"));
  add(req("bad chunked encoding", "PUT", txnPath(), { ...json, "Transfer-Encoding": "chunked" }, "zz\r\n{}\r\n0\r\n\r\n"));
  add(req("unknown transfer encoding", "PUT", txnPath(), { ...json, "Transfer-Encoding": "bogus" }, "{}"));
  add(req("gzip that is not gzip", "PUT", txnPath(), { ...json, "Content-Encoding": "gzip" }, good()));
  add(req("brotli", "PUT", txnPath(), { ...json, "Content-Encoding": "br" }, good()));
  add(req("unknown content encoding", "PUT", txnPath(), { ...json, "Content-Encoding": "x-evil" }, good()));
  add({ name: "HTTP/0.9 request line", bytes: Buffer.from(`PUT ${txnPath()}\r\n\r\n`) });
  add({ name: "HTTP/2 preface on HTTP/1", bytes: Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") });
  add({ name: "bare LF line endings, bad body", bytes: Buffer.from(`PUT ${txnPath()} HTTP/1.1\nHost: x\nConnection: close\nAuthorization: Bearer ${ctx.token}\nContent-Type: application/json\nContent-Length: 2\n\n{x`) });

  // Seeded mutations of a valid transaction, until `total`.
  const mutations: Array<() => HostileCase> = [
    () => {
      const field = pick(["type", "room_id", "sender", "event_id"]);
      return put(`mutated ${field}`, { events: [validEvent(), { ...validEvent(), [field]: pick(NOT_STRINGS) }] });
    },
    () => put("mutated content", { events: [{ ...validEvent(), content: pick(NOT_OBJECTS) }] }),
    () => put("mutated event", { events: [validEvent(), pick(NOT_OBJECTS)] }),
    () => put("mutated events", { events: pick(NOT_ARRAYS) }),
    () => put("mutated ephemeral", { events: [validEvent()], "de.sorunome.msc2409.ephemeral": pick(NOT_ARRAYS) }),
    () => {
      const text = good();
      return put("truncated JSON", text.slice(0, 1 + Math.floor(rand() * (text.length - 1))));
    },
    () => {
      const text = good();
      const at = Math.floor(rand() * text.length);
      return put("control character in JSON", text.slice(0, at) + pick(CONTROL) + text.slice(at));
    },
    () => {
      const text = good();
      const at = Math.floor(rand() * text.length);
      return put("byte replaced by a control character", text.slice(0, at) + pick(CONTROL) + text.slice(at + 1));
    },
    () => put("mutated content type", good(), { ...auth, "Content-Type": pick(["text/plain", "application/xml", "application/octet-stream", "image/png"]) }),
    () => put("body that is a JSON scalar", JSON.stringify(pick([...NOT_STRINGS.filter((v) => typeof v !== "object" || v === null), "events"]))),
    () => put("mutated txnId", good(), json, `${TXN}/${pick(["%E0%A4%A", "%00", "a%0Ab", "%2F%2E%2E", "%FF"])}${n++}`),
    () => req("mutated method", pick(["GET", "DELETE", "POST", "PATCH"]), txnPath(), json, good()),
    () => {
      const depth = 600 + Math.floor(rand() * 20_000);
      const event = JSON.stringify(validEvent()).replace('"content":{', `"content":{"deep":${"[".repeat(depth)}${"]".repeat(depth)},`);
      return put(`valid JSON nested ${depth} deep`, `{"events":[${event}]}`);
    },
  ];
  while (cases.length < total) add(pick(mutations)());
  return cases;
}
