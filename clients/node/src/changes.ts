// The change stream, GET /v1/changes: server-sent events parsed by hand over fetch's body
// stream (the WHATWG event-stream rules that matter here) into ChangeEvents.

/** A raw server-sent event. */
export interface RawEvent {
  event: string;
  data: string;
  id: string | null;
}

/** What changed (`type` is the event name). */
export type Change =
  | { type: "session.ended"; session_id: string; user_id: string }
  | { type: "session.changed"; session_id: string; user_id: string }
  | { type: "user.changed"; user_id: string }
  | { type: "key.revoked"; key_id: string }
  | { type: "reset"; reason: string }
  | { type: "ping" }
  | { type: "other"; event: string; data: string };

/** One event: what changed, and its id to resume after. */
export interface ChangeEvent {
  id: string | null;
  change: Change;
}

/** A text/event-stream parser fed with text as it arrives. */
export class SseParser {
  private buf = "";
  private event: string | null = null;
  private data: string | null = null;
  private id: string | null = null;

  /** Feeds text; returns the events it completes. */
  feed(text: string): RawEvent[] {
    this.buf += text;
    const out: RawEvent[] = [];
    let start = 0;
    for (let i = 0; i < this.buf.length; i++) {
      const c = this.buf.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      // A "\r" at the end may be half of "\r\n": wait for more.
      if (c === 13 && i + 1 === this.buf.length) break;
      const e = this.line(this.buf.slice(start, i));
      if (e) out.push(e);
      if (c === 13 && this.buf.charCodeAt(i + 1) === 10) i++;
      start = i + 1;
    }
    this.buf = this.buf.slice(start);
    return out;
  }

  private line(line: string): RawEvent | null {
    if (line === "") {
      const { event, data, id } = this;
      this.event = this.data = this.id = null;
      return data === null ? null : { event: event ?? "message", data, id };
    }
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data = this.data === null ? value : this.data + "\n" + value;
    else if (field === "id" && !value.includes("\0")) this.id = value;
    return null;
  }
}

/** The change of a raw event. */
export function parseChange(raw: RawEvent): ChangeEvent {
  let d: Record<string, unknown> = {};
  try { d = JSON.parse(raw.data) ?? {}; } catch { /* not JSON */ }
  const s = (k: string) => (typeof d[k] === "string" ? (d[k] as string) : null);
  let change: Change;
  const sid = s("session_id"), uid = s("user_id"), kid = s("key_id");
  switch (raw.event) {
    case "session.ended":
    case "session.changed":
      change = sid && uid ? { type: raw.event, session_id: sid, user_id: uid } : { type: "other", event: raw.event, data: raw.data };
      break;
    case "user.changed":
      change = uid ? { type: "user.changed", user_id: uid } : { type: "other", event: raw.event, data: raw.data };
      break;
    case "key.revoked":
      change = kid ? { type: "key.revoked", key_id: kid } : { type: "other", event: raw.event, data: raw.data };
      break;
    case "reset":
      change = { type: "reset", reason: s("reason") ?? "" };
      break;
    case "ping":
      change = { type: "ping" };
      break;
    default:
      change = { type: "other", event: raw.event, data: raw.data };
  }
  return { id: raw.id, change };
}

/** An open change stream (HallpassClient.changes). */
export class ChangeStream {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private readonly parser = new SseParser();
  private readonly pending: RawEvent[] = [];
  private pendingRead: Promise<ReadableStreamReadResult<Uint8Array>> | null = null;
  private done = false;

  constructor(body: ReadableStream<Uint8Array>) {
    this.reader = body.getReader();
  }

  /** Events already received, without waiting. */
  ready(): ChangeEvent[] {
    return this.pending.splice(0).map(parseChange);
  }

  /**
   * Reads what arrives within `waitMs` (forever when omitted): `"data"`, `"timeout"` when
   * nothing came in time, `"end"` when the stream ended or broke.
   */
  async pull(waitMs?: number): Promise<"data" | "timeout" | "end"> {
    if (this.done) return "end";
    this.pendingRead ??= this.reader.read();
    let timer: NodeJS.Timeout | undefined;
    const timeout = waitMs === undefined ? null : new Promise<"timeout">((r) => { timer = setTimeout(() => r("timeout"), waitMs); });
    try {
      const r = await (timeout ? Promise.race([this.pendingRead, timeout]) : this.pendingRead);
      if (r === "timeout") return "timeout";
      this.pendingRead = null;
      if (r.done) { this.done = true; return "end"; }
      for (const e of this.parser.feed(this.decoder.decode(r.value, { stream: true }))) this.pending.push(e);
      return "data";
    } catch {
      this.done = true;
      return "end";
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  /** The next event, or null when the stream ended or broke. */
  async next(): Promise<ChangeEvent | null> {
    for (;;) {
      if (this.pending.length) return parseChange(this.pending.shift()!);
      if ((await this.pull()) === "end") return null;
    }
  }

  /** Closes the stream. */
  async close(): Promise<void> {
    this.done = true;
    await this.reader.cancel().catch(() => undefined);
  }
}
