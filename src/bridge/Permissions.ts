/**
 * Who may use the bridge: `permissions` in the config maps a user ID, a server name or "*"
 * to none, user or admin. The most specific entry wins; a user matched by none is "none".
 * With no `permissions` in the config, the schema gives `{ <homeserver.domain>: "user" }`:
 * other servers' users are refused until the operator lets them in.
 */
export type PermissionLevel = "none" | "user" | "admin";

export class Permissions {
  constructor(private readonly entries: Record<string, PermissionLevel>) {}

  levelOf(userId: string): PermissionLevel {
    const server = userId.slice(userId.indexOf(":") + 1);
    return this.entries[userId] ?? this.entries[server] ?? this.entries["*"] ?? "none";
  }

  mayUse(userId: string): boolean {
    return this.levelOf(userId) !== "none";
  }

  isAdmin(userId: string): boolean {
    return this.levelOf(userId) === "admin";
  }
}
