/** Idents (the USER name) for Matrix users' connections. */

/** A stable ident (≤ 10 chars) for a Matrix user: letters and digits of the localpart. */
export function usernameFor(userId: string): string {
  const localpart = userId.slice(1).split(":")[0];
  return (localpart.toLowerCase().replace(/[^a-z0-9]/g, "") || "matrix").slice(0, 10);
}

/** `base` made unique among `taken` by a numeric suffix, within 10 characters. */
export function uniqueUsername(base: string, taken: Set<string>): string {
  if (!taken.has(base)) return base;
  for (let n = 2; ; n++) {
    const suffix = String(n);
    const candidate = `${base.slice(0, 10 - suffix.length)}${suffix}`;
    if (!taken.has(candidate)) return candidate;
  }
}
