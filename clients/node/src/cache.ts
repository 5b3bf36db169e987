// Sessions: checked sessions kept in memory (bounded size and age) and kept true by the
// change stream, with the rules of the Rust client: memory answers only while the stream
// is connected; session.ended / session.changed drop the session, user.changed the user's
// sessions, key.revoked and reset everything; a reconnect that resumed keeps the cache
// (after applying what it missed), any other starts empty; an answer is stored only if
// nothing was dropped while it was on its way.
import { HallpassClient, type SessionWithUser } from "./client";
import type { ChangeEvent, ChangeStream } from "./changes";

export interface CacheOptions {
  /** At most this many sessions (the oldest go first). Default 10 000. */
  capacity?: number;
  /** A session is asked for again after this long at most. Default 300 000 ms. */
  ttlMs?: number;
  /** The first wait before reconnecting the stream (doubling to 5 s). Default 100 ms. */
  reconnectDelayMs?: number;
  /** The silence after which the stream counts as gone (pings come every 15 s). Default 40 000 ms. */
  silenceMs?: number;
}

interface Entry {
  value: SessionWithUser;
  until: number;
}

export interface CacheStats {
  hits: number;
  misses: number;
  connects: number;
  clears: number;
}

/** A session check that answers from memory while hallpass's change stream vouches for it. */
export class Sessions {
  readonly client: HallpassClient;
  private readonly capacity: number;
  private readonly ttlMs: number;
  private readonly reconnectDelayMs: number;
  private readonly silenceMs: number;
  private readonly byToken = new Map<string, Entry>();
  private readonly bySession = new Map<string, string>();
  private readonly byUser = new Map<string, Set<string>>();
  private live = false;
  private epoch = 0;
  private closed = false;
  private stream: ChangeStream | null = null;
  private abort = new AbortController();
  private liveWaiters: Array<() => void> = [];
  readonly stats: CacheStats = { hits: 0, misses: 0, connects: 0, clears: 0 };

  constructor(client: HallpassClient, options: CacheOptions = {}) {
    this.client = client;
    this.capacity = Math.max(1, options.capacity ?? 10_000);
    this.ttlMs = options.ttlMs ?? 300_000;
    this.reconnectDelayMs = options.reconnectDelayMs ?? 100;
    this.silenceMs = options.silenceMs ?? 40_000;
    void this.follow();
  }

  /** Whether memory may answer now. */
  isLive(): boolean {
    return this.live;
  }

  /** Resolves true once the stream is connected, false after `limitMs`. */
  waitLive(limitMs: number): Promise<boolean> {
    if (this.live) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), limitMs);
      this.liveWaiters.push(() => { clearTimeout(t); resolve(true); });
    });
  }

  /** The number of sessions in memory. */
  get size(): number {
    return this.byToken.size;
  }

  /** The session of `token` from memory only (null: not cached, expired, or the stream is down). */
  cached(token: string): SessionWithUser | null {
    if (!this.live) return null;
    const e = this.byToken.get(token);
    if (!e || e.until <= Date.now()) return null;
    this.stats.hits++;
    return e.value;
  }

  /** The session and user of `token`: from memory when the stream vouches for it, else from the server (then remembered). */
  async check(token: string): Promise<SessionWithUser> {
    const hit = this.cached(token);
    if (hit) return hit;
    this.stats.misses++;
    const wasLive = this.live;
    const epoch = this.epoch;
    const value = await this.client.getSession(token);
    if (wasLive && this.live && this.epoch === epoch && !this.closed) this.insert(token, value);
    return value;
  }

  /** Forgets `token` (for the very next request after the app's own logout). */
  forget(token: string): void {
    this.epoch++;
    this.remove(token);
  }

  /** Logs out (DELETE /v1/session) and forgets the session. */
  async end(token: string): Promise<void> {
    this.forget(token);
    await this.client.endSession(token);
  }

  /** Stops the change stream (the process may exit). */
  async close(): Promise<void> {
    this.closed = true;
    this.setLive(false);
    this.abort.abort();
    await this.stream?.close();
  }

  private insert(token: string, value: SessionWithUser): void {
    this.remove(token);
    while (this.byToken.size >= this.capacity) {
      const oldest = this.byToken.keys().next().value;
      if (oldest === undefined) break;
      this.remove(oldest);
    }
    const s = value.session;
    const ends = Math.min(Date.parse(s.expires_at), Date.parse(s.absolute_expires_at));
    this.byToken.set(token, { value, until: Math.min(Date.now() + this.ttlMs, ends) });
    this.bySession.set(s.id, token);
    let set = this.byUser.get(value.user.id);
    if (!set) this.byUser.set(value.user.id, (set = new Set()));
    set.add(token);
  }

  private remove(token: string): void {
    const e = this.byToken.get(token);
    if (!e) return;
    this.byToken.delete(token);
    this.bySession.delete(e.value.session.id);
    const set = this.byUser.get(e.value.user.id);
    if (set) {
      set.delete(token);
      if (set.size === 0) this.byUser.delete(e.value.user.id);
    }
  }

  private clear(): void {
    this.epoch++;
    this.byToken.clear();
    this.bySession.clear();
    this.byUser.clear();
    this.stats.clears++;
  }

  private setLive(live: boolean): void {
    this.live = live;
    if (live) for (const w of this.liveWaiters.splice(0)) w();
  }

  /** Applies one event of the stream. */
  apply(ev: ChangeEvent): void {
    const c = ev.change;
    switch (c.type) {
      case "session.ended":
      case "session.changed": {
        this.epoch++;
        const t = this.bySession.get(c.session_id);
        if (t !== undefined) this.remove(t);
        break;
      }
      case "user.changed": {
        this.epoch++;
        for (const t of [...(this.byUser.get(c.user_id) ?? [])]) this.remove(t);
        break;
      }
      case "key.revoked":
      case "reset":
        this.clear();
        break;
      default:
        break;
    }
  }

  private async follow(): Promise<void> {
    let lastId: string | null = null;
    let delay = 0;
    while (!this.closed) {
      if (delay) await new Promise((r) => setTimeout(r, delay));
      if (this.closed) return;
      let stream: ChangeStream;
      try {
        stream = await this.client.changes(lastId, this.abort.signal);
      } catch {
        delay = Math.min(Math.max(delay * 2, this.reconnectDelayMs), 5_000);
        continue;
      }
      if (this.closed) { await stream.close(); return; }
      this.stream = stream;
      this.stats.connects++;
      if (lastId === null) this.clear();
      const take = () => {
        const evs = stream.ready();
        for (const ev of evs) {
          this.apply(ev);
          if (ev.id !== null) lastId = ev.id;
        }
        return evs.length;
      };
      // A resume sends the missed events at once: apply them before memory answers again.
      for (let i = 0; i < 50 && (await stream.pull(20)) === "data"; i++) take();
      take();
      if (this.closed) return;
      this.setLive(true);
      // Until it ends, breaks, or stays silent longer than two pings.
      while ((await stream.pull(this.silenceMs)) === "data") take();
      this.setLive(false);
      await stream.close();
      this.stream = null;
      delay = this.reconnectDelayMs;
    }
  }
}
