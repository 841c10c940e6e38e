/**
 * Per-user IPv6 source addresses: each Matrix user gets a stable address of their own inside
 * the network's prefix (derived from a hash of their user ID, moved along on a collision), so
 * networks that limit connections per IP see one user per address.
 */
import { createHash } from "node:crypto";
import { isIPv6 } from "node:net";

export function parseIpv6(address: string): bigint {
  if (!isIPv6(address)) throw new Error(`not an IPv6 address: ${address}`);
  let [head, tail] = address.split("::") as [string, string | undefined];
  const headParts = head ? head.split(":") : [];
  const tailParts = tail ? tail.split(":") : [];
  const missing = 8 - headParts.length - tailParts.length;
  const parts = tail === undefined ? headParts : [...headParts, ...Array(missing).fill("0"), ...tailParts];
  return parts.reduce((acc, part) => (acc << 16n) | BigInt(parseInt(part || "0", 16)), 0n);
}

export function formatIpv6(value: bigint): string {
  const parts: string[] = [];
  for (let i = 7; i >= 0; i--) parts.push(((value >> BigInt(i * 16)) & 0xffffn).toString(16));
  // Compress the longest run of zero groups, as RFC 5952 recommends.
  let best = { start: -1, length: 0 };
  for (let i = 0; i < 8; ) {
    if (parts[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && parts[j] === "0") j++;
    if (j - i > best.length && j - i > 1) best = { start: i, length: j - i };
    i = j;
  }
  if (best.start < 0) return parts.join(":");
  return `${parts.slice(0, best.start).join(":")}::${parts.slice(best.start + best.length).join(":")}`;
}

/** A stable address for `userId` in `prefix` (e.g. 2001:db8::/64) that is not in `taken`. */
export function allocateIpv6(prefix: string, userId: string, taken: Set<string>): string {
  const [network, lengthText] = prefix.split("/");
  const length = Number(lengthText);
  if (!(length >= 0 && length <= 126)) throw new Error(`prefix length must be 0-126: ${prefix}`);
  const hostBits = BigInt(128 - length);
  const hostSpace = 1n << hostBits;
  const base = (parseIpv6(network) >> hostBits) << hostBits;
  const hash = BigInt(`0x${createHash("sha256").update(userId).digest("hex").slice(0, 32)}`);
  // Skip the all-zeros host (the prefix itself, often the router's).
  let host = (hash % (hostSpace - 1n)) + 1n;
  for (let tries = 0n; tries < hostSpace; tries++) {
    const candidate = formatIpv6(base + host);
    if (!taken.has(candidate)) return candidate;
    host = (host % (hostSpace - 1n)) + 1n;
  }
  throw new Error(`the prefix ${prefix} has no free address left`);
}
