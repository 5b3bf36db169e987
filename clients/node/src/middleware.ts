// An Express-style middleware (req, res, next): the request's session token from
// X-Session-Token, Authorization: Bearer, or a cookie, checked through Sessions; the
// session and user land on req.hallpass, else a 401 problem (503 when hallpass cannot answer).
import type { Sessions } from "./cache";
import type { SessionWithUser } from "./client";
import { HallpassError } from "./errors";

export interface MiddlewareOptions {
  /** A cookie to read the token from, after the headers. */
  cookie?: string;
  /** Let requests without a valid session through (req.hallpass stays undefined). */
  optional?: boolean;
}

interface Req {
  headers: Record<string, string | string[] | undefined>;
  hallpass?: SessionWithUser & { token: string };
}
interface Res {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
}

/** The session token of a request's headers, or null. */
export function tokenFrom(headers: Req["headers"], cookie?: string): string | null {
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
  const x = one(headers["x-session-token"])?.trim();
  if (x) return x;
  const auth = one(headers["authorization"])?.trim();
  if (auth) {
    const m = /^bearer\s+(.+)$/i.exec(auth);
    return m ? m[1].trim() : null;
  }
  if (!cookie) return null;
  const raw = headers["cookie"];
  for (const header of Array.isArray(raw) ? raw : raw ? [raw] : []) {
    for (const pair of header.split(";")) {
      const eq = pair.indexOf("=");
      if (eq > 0 && pair.slice(0, eq).trim() === cookie) {
        const v = pair.slice(eq + 1).trim().replace(/^"(.*)"$/, "$1");
        if (v) return v;
      }
    }
  }
  return null;
}

function refuse(res: Res, status: number, code: string, title: string, detail: string): void {
  res.statusCode = status;
  res.setHeader("content-type", "application/problem+json");
  if (status === 401) res.setHeader("www-authenticate", "Bearer");
  else res.setHeader("retry-after", "1");
  res.end(JSON.stringify({ type: `/problems/${code}`, title, status, detail, code }));
}

/** The middleware: `app.use(hallpassMiddleware(sessions, { cookie: "sid" }))`. */
export function hallpassMiddleware(sessions: Sessions, options: MiddlewareOptions = {}) {
  return (req: Req, res: Res, next: (err?: unknown) => void): void => {
    const token = tokenFrom(req.headers, options.cookie);
    if (!token) {
      if (options.optional) return next();
      return refuse(res, 401, "session_invalid", "Session invalid", "sign in first");
    }
    sessions.check(token).then(
      (v) => {
        req.hallpass = { ...v, token };
        next();
      },
      (e: unknown) => {
        // Only the token's own fault is the user's 401; a wrong API key or throttling is
        // the app's problem (503).
        if (e instanceof HallpassError && e.code === "session_invalid") {
          if (options.optional) return next();
          return refuse(res, 401, "session_invalid", "Session invalid", "sign in first");
        }
        refuse(res, 503, "storage_unavailable", "Storage unavailable", "sessions cannot be checked right now");
      },
    );
  };
}
