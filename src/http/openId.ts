/**
 * Who holds an OpenID token: asks the user's homeserver (`/_matrix/federation/v1/openid/userinfo`)
 * and checks that the user it names belongs to that server. The homeserver is found by Matrix
 * server discovery (the library's MatrixHostResolver) unless the operator mapped its name to a
 * URL. Strangers choose the server name, so every connection made for a discovered server goes
 * through one guard that refuses loopback, private and link-local addresses (SSRF): it checks
 * the addresses the socket connects to, so a name that resolves differently a second time
 * (DNS rebinding) is caught too.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from "node:dns";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";
import { BlockList, isIP } from "node:net";
import { MatrixHostResolver } from "matrix-appservice-bridge";

/** Addresses no discovered homeserver may have (after Synapse's default ip_range_blacklist). */
const PRIVATE_RANGES: [string, number, "ipv4" | "ipv6"][] = [
  ["0.0.0.0", 8, "ipv4"],
  ["10.0.0.0", 8, "ipv4"],
  ["100.64.0.0", 10, "ipv4"],
  ["127.0.0.0", 8, "ipv4"],
  ["169.254.0.0", 16, "ipv4"],
  ["172.16.0.0", 12, "ipv4"],
  ["192.0.0.0", 24, "ipv4"],
  ["192.0.2.0", 24, "ipv4"],
  ["192.88.99.0", 24, "ipv4"],
  ["192.168.0.0", 16, "ipv4"],
  ["198.18.0.0", 15, "ipv4"],
  ["198.51.100.0", 24, "ipv4"],
  ["203.0.113.0", 24, "ipv4"],
  ["224.0.0.0", 4, "ipv4"],
  ["240.0.0.0", 4, "ipv4"],
  ["::", 128, "ipv6"],
  ["::1", 128, "ipv6"],
  ["fe80::", 10, "ipv6"],
  ["fc00::", 7, "ipv6"],
  ["fec0::", 10, "ipv6"],
  ["2001:db8::", 32, "ipv6"],
  ["ff00::", 8, "ipv6"],
];
const privateRanges = new BlockList();
for (const [net, prefix, type] of PRIVATE_RANGES) privateRanges.addSubnet(net, prefix, type);

/** True for an address a discovered homeserver may not have (IPv4-mapped IPv6 judged as IPv4). */
export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return isPrivateAddress(mapped);
  const family = isIP(address);
  if (family === 0) return true; // not an address at all: refuse rather than guess
  return privateRanges.check(address, family === 4 ? "ipv4" : "ipv6");
}

/** A refused or failed exchange; the message is safe to show the caller. */
export class OpenIdError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OpenIdError";
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** dns.lookup that fails for private addresses (what the socket would connect to). */
function guardedLookup(hostname: string, options: LookupOneOptions | LookupAllOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const refused = addresses.find((a) => isPrivateAddress(a.address));
    if (refused) return callback(Object.assign(new Error(`${hostname} resolves to a private address (${refused.address})`), { code: "EPRIVATE" }), []);
    if ((options as LookupAllOptions).all) return callback(null, addresses);
    callback(null, addresses[0].address, addresses[0].family);
  });
}

export interface GetResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One GET with a deadline and a size cap, no redirects; `guard` refuses private addresses. */
export function boundedGet(url: URL, options: { timeoutMs: number; maxBytes: number; guard: boolean; hostHeader?: string }): Promise<GetResult> {
  if (options.guard && isIP(url.hostname.replace(/^\[|\]$/g, "")) && isPrivateAddress(url.hostname.replace(/^\[|\]$/g, ""))) {
    return Promise.reject(new OpenIdError(`${url.hostname} is a private address`));
  }
  const request = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "GET",
        headers: { Accept: "application/json", ...(options.hostHeader ? { Host: options.hostHeader } : {}) },
        timeout: options.timeoutMs,
        ...(options.guard ? { lookup: guardedLookup as never } : {}),
        ...(options.hostHeader && url.protocol === "https:" ? { servername: url.hostname } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > options.maxBytes) req.destroy(new OpenIdError("the homeserver's answer is too large"));
          else chunks.push(chunk);
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    const deadline = setTimeout(() => req.destroy(new OpenIdError("the homeserver did not answer in time")), options.timeoutMs);
    req.on("close", () => clearTimeout(deadline));
    req.on("timeout", () => req.destroy(new OpenIdError("the homeserver did not answer in time")));
    req.on("error", reject);
    req.end();
  });
}

export interface OpenIdOptions {
  /** Server name → URL, trusted as given (no discovery, no address check). */
  serverUrls: Record<string, string>;
  allowPrivateAddresses: boolean;
  timeoutMs: number;
}

const SERVER_NAME = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/;
const MAX_ANSWER_BYTES = 64 * 1024;
/**
 * Exchanges in progress at once, across the API: each resolves server names of the caller's
 * choosing with dns.lookup, on libuv's 4 threads that the journal's file writes share; slow DNS
 * for many names at once would hold up acknowledgements to the homeserver.
 */
const MAX_CONCURRENT_EXCHANGES = 2;

export class OpenIdVerifier {
  private readonly resolver: MatrixHostResolver;
  private inProgress = 0;

  constructor(private readonly options: OpenIdOptions) {
    // Discovery's own requests (.well-known) go through the same guard, with the same deadline.
    const guardedFetch = async (input: string | URL | Request): Promise<Response> => {
      const res = await boundedGet(new URL(String(input instanceof Request ? input.url : input)), { timeoutMs: options.timeoutMs, maxBytes: MAX_ANSWER_BYTES, guard: !options.allowPrivateAddresses });
      const headers = new Headers();
      for (const [name, value] of Object.entries(res.headers)) if (typeof value === "string") headers.set(name, value);
      return new Response([101, 204, 205, 304].includes(res.status) ? null : new Uint8Array(res.body), { status: res.status, headers });
    };
    this.resolver = new MatrixHostResolver({ fetch: guardedFetch as typeof fetch });
  }

  /** The Matrix user ID the token belongs to; throws OpenIdError when it cannot be confirmed (or when too many are being checked). */
  async userOf(matrixServer: string, openIdToken: string): Promise<string> {
    if (!SERVER_NAME.test(matrixServer)) throw new OpenIdError("matrixServer is not a server name");
    if (this.inProgress >= MAX_CONCURRENT_EXCHANGES) throw new OpenIdError("too many OpenID tokens are being checked at once; try again shortly");
    this.inProgress += 1;
    // One deadline for the whole exchange (discovery and the check), not one per request.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new OpenIdError(`checking the token with ${matrixServer} took too long`)), this.options.timeoutMs * 2);
    });
    try {
      return await Promise.race([this.check(matrixServer, openIdToken), deadline]);
    } finally {
      clearTimeout(timer);
      this.inProgress -= 1;
    }
  }

  private async check(matrixServer: string, openIdToken: string): Promise<string> {
    const configured = Object.hasOwn(this.options.serverUrls, matrixServer) ? this.options.serverUrls[matrixServer] : undefined;
    let base: URL;
    let hostHeader: string | undefined;
    if (configured) {
      base = new URL(configured);
    } else {
      try {
        ({ url: base, hostHeader } = await this.resolver.resolveMatrixServer(matrixServer));
      } catch (err) {
        throw new OpenIdError(`could not find the homeserver of ${matrixServer} (${(err as Error).message})`);
      }
    }
    const url = new URL("/_matrix/federation/v1/openid/userinfo", base);
    url.searchParams.set("access_token", openIdToken);
    let answer: GetResult;
    try {
      answer = await boundedGet(url, { timeoutMs: this.options.timeoutMs, maxBytes: MAX_ANSWER_BYTES, guard: !configured && !this.options.allowPrivateAddresses, hostHeader });
    } catch (err) {
      throw new OpenIdError(`could not reach the homeserver of ${matrixServer} (${(err as Error).message})`);
    }
    if (answer.status !== 200) throw new OpenIdError(`the homeserver of ${matrixServer} did not accept the token (${answer.status})`);
    let sub: unknown;
    try {
      sub = (JSON.parse(answer.body.toString("utf8")) as { sub?: unknown }).sub;
    } catch {
      throw new OpenIdError("the homeserver's answer is not JSON");
    }
    const server = typeof sub === "string" ? /^@[^:\s]+:(\S+)$/.exec(sub)?.[1] : undefined;
    if (!server) throw new OpenIdError("the homeserver's answer names no user");
    if (server !== matrixServer) throw new OpenIdError(`the homeserver of ${matrixServer} vouched for a user of another server`);
    return sub as string;
  }
}
