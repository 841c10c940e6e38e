/**
 * A Matrix user for tests, speaking the client-server API as a real client would. A sync
 * loop collects every timeline event, so tests wait for what the user would see.
 */
import { waitFor } from "./wait.js";

export interface TimelineEvent {
  event_id: string;
  type: string;
  sender: string;
  state_key?: string;
  content: Record<string, unknown>;
  origin_server_ts: number;
}

export class MatrixTestClient {
  readonly timelines = new Map<string, TimelineEvent[]>();
  readonly invites = new Set<string>();
  /** Each room's typing users, as the last m.typing of /sync said. */
  readonly typing = new Map<string, string[]>();
  /** The stripped state of rooms the user is invited to (name, join rules, the inviter). */
  readonly inviteState = new Map<string, TimelineEvent[]>();
  /** Called for each timeline event as the sync loop receives it (benchmarks time arrivals). */
  onTimelineEvent: ((roomId: string, event: TimelineEvent) => void) | null = null;
  private since: string | undefined;
  private syncing = false;
  private syncLoop: Promise<void> | null = null;
  private txn = 0;

  constructor(
    readonly baseUrl: string,
    readonly userId: string,
    readonly accessToken: string,
  ) {}

  async request<T = Record<string, unknown>>(method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<T> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: { Authorization: `Bearer ${this.accessToken}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const json = (await res.json().catch(() => ({}))) as T & { errcode?: string; error?: string };
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${json.errcode} ${json.error}`);
    return json;
  }

  async createRoom(options: Record<string, unknown> = {}): Promise<string> {
    const { room_id } = await this.request<{ room_id: string }>("POST", "/_matrix/client/v3/createRoom", { preset: "public_chat", ...options });
    return room_id;
  }

  async joinRoom(roomIdOrAlias: string): Promise<string> {
    const { room_id } = await this.request<{ room_id: string }>("POST", `/_matrix/client/v3/join/${encodeURIComponent(roomIdOrAlias)}`, {});
    return room_id;
  }

  async send(roomId: string, content: Record<string, unknown>, type = "m.room.message"): Promise<string> {
    const txn = `${Date.now()}-${this.txn++}`;
    const { event_id } = await this.request<{ event_id: string }>(
      "PUT",
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/${type}/${txn}`,
      content,
    );
    return event_id;
  }

  async setState(roomId: string, type: string, content: Record<string, unknown>, stateKey = ""): Promise<string> {
    const path = `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/${type}/${encodeURIComponent(stateKey)}`;
    const { event_id } = await this.request<{ event_id: string }>("PUT", path, content);
    return event_id;
  }

  /** Redacts an event (as the user), with an optional reason. */
  async redact(roomId: string, eventId: string, reason?: string): Promise<string> {
    const path = `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/redact/${encodeURIComponent(eventId)}/${Date.now()}-${this.txn++}`;
    const { event_id } = await this.request<{ event_id: string }>("PUT", path, reason ? { reason } : {});
    return event_id;
  }

  /** Says the user is typing (or stopped) in a room. */
  async setTyping(roomId: string, typing: boolean, timeoutMs = 30_000): Promise<void> {
    await this.request("PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/typing/${encodeURIComponent(this.userId)}`, typing ? { typing, timeout: timeoutMs } : { typing });
  }

  sendText(roomId: string, body: string, msgtype = "m.text"): Promise<string> {
    return this.send(roomId, { msgtype, body });
  }

  startSync(): void {
    if (this.syncing) return;
    this.syncing = true;
    this.syncLoop = (async () => {
      const filter = encodeURIComponent(JSON.stringify({ room: { timeline: { limit: 1000 } }, presence: { not_types: ["*"] } }));
      while (this.syncing) {
        try {
          const query = `filter=${filter}&timeout=1000${this.since ? `&since=${this.since}` : ""}`;
          const body = await this.request<SyncResponse>("GET", `/_matrix/client/v3/sync?${query}`, undefined, 10_000);
          this.since = body.next_batch;
          // Rooms the user was kicked from or left come under "leave", with the events up to then.
          for (const [roomId, room] of [...Object.entries(body.rooms?.join ?? {}), ...Object.entries(body.rooms?.leave ?? {})]) {
            const list = this.timelines.get(roomId) ?? [];
            const events = room.timeline?.events ?? [];
            list.push(...events);
            for (const event of events) this.onTimelineEvent?.(roomId, event);
            this.timelines.set(roomId, list);
          }
          for (const [roomId, room] of Object.entries(body.rooms?.join ?? {})) {
            const typing = room.ephemeral?.events?.filter((e) => e.type === "m.typing").pop();
            if (typing) this.typing.set(roomId, (typing.content.user_ids as string[] | undefined) ?? []);
          }
          for (const [roomId, room] of Object.entries(body.rooms?.invite ?? {})) {
            this.invites.add(roomId);
            this.inviteState.set(roomId, room.invite_state?.events ?? []);
          }
        } catch {
          if (this.syncing) await new Promise((r) => setTimeout(r, 200));
        }
      }
    })();
  }

  async stopSync(): Promise<void> {
    this.syncing = false;
    await this.syncLoop;
  }

  messages(roomId: string, filter: (e: TimelineEvent) => boolean = () => true): TimelineEvent[] {
    return (this.timelines.get(roomId) ?? []).filter((e) => e.type === "m.room.message" && filter(e));
  }

  waitForEvent(roomId: string, match: (e: TimelineEvent) => boolean, what = "an event", timeoutMs = 20_000): Promise<TimelineEvent> {
    return waitFor(`${what} in ${roomId} seen by ${this.userId}`, () => (this.timelines.get(roomId) ?? []).find(match), timeoutMs);
  }

  waitForMessage(roomId: string, match: (e: TimelineEvent) => boolean, timeoutMs = 20_000): Promise<TimelineEvent> {
    return waitFor(`a message in ${roomId} seen by ${this.userId}`, () => this.messages(roomId).find(match), timeoutMs);
  }

  /** Waits for an invite to a room whose stripped state matches. */
  waitForInvite(what: string, match: (state: TimelineEvent[], roomId: string) => boolean, timeoutMs = 20_000): Promise<string> {
    return waitFor(`${this.userId} to be invited to ${what}`, () => [...this.inviteState].find(([roomId, state]) => match(state, roomId))?.[0], timeoutMs);
  }

  async displayName(userId: string): Promise<string | undefined> {
    const profile = await this.request<{ displayname?: string }>("GET", `/_matrix/client/v3/profile/${encodeURIComponent(userId)}`);
    return profile.displayname;
  }
}

interface SyncResponse {
  next_batch: string;
  rooms?: {
    join?: Record<string, { timeline?: { events?: TimelineEvent[] }; ephemeral?: { events?: { type: string; content: Record<string, unknown> }[] } }>;
    leave?: Record<string, { timeline?: { events?: TimelineEvent[] } }>;
    invite?: Record<string, { invite_state?: { events?: TimelineEvent[] } }>;
  };
}
