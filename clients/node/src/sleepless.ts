// @hallpass/client/sleepless: the API of npm sleepless-sessions 1.6.0 (create(opts, done,
// fail) and register, unregister, authenticate, get_user, get_session, freshen_session,
// end_session, reset_password_code, reset_password with its argument orders and callback
// shapes) over hallpass, so its users switch by changing an import. Its `user_id` (a
// username) is hallpass's username. Where hallpass is deliberately stricter, the answer is
// sleepless's `{ error }` shape; see README "Moving from sleepless-sessions".
import { HallpassClient } from "./client";
import { Sessions } from "./cache";
import { HallpassError } from "./errors";
import type { SessionWithUser } from "./client";

type Answer = Record<string, unknown>;
type Done = (r: Answer) => void;
type Fail = (e: unknown) => void;

export interface SleeplessOptions {
  /** hallpass's root URL (default: HALLPASS_URL). */
  url?: string;
  /** The scope's API key (default: HALLPASS_API_KEY). */
  api_key?: string;
  /** Keep checked sessions in memory, kept true by the change stream (default true). */
  cache?: boolean;
  /** Accepted and ignored: hallpass's server configuration sets session and code lifetimes. */
  session_ttl?: number;
  /** Accepted and ignored (see session_ttl). */
  reset_code_ttl?: number;
  /** Anything else sleepless's MariaDB options had (host, user, ...) is ignored. */
  [other: string]: unknown;
}

/** The functions sleepless-sessions' create() gives, and destroy(). */
export interface SleeplessApi {
  register(email: string, user_id: string, password: string, done: Done, fail?: Fail): void;
  unregister(uid_or_email: string, password: string, done: Done, fail?: Fail): void;
  authenticate(uid_or_email: string, password: string, done: Done, fail?: Fail): void;
  get_user(uid_or_email: string, done: Done, fail?: Fail): void;
  get_session(sid: string, done: Done, fail?: Fail): void;
  freshen_session(sid: string, done: Done, fail?: Fail): void;
  end_session(sid: string, done: Done, fail?: Fail): void;
  reset_password_code(uid_or_email: string, done: Done, fail?: Fail): void;
  reset_password(reset_code: string, new_password: string, done: Done, fail?: Fail): void;
  destroy(): void;
}

const SAFE_NAME = /^[-_A-Za-z0-9]+$/;

function sessionShape(sid: string, v: SessionWithUser): Answer {
  const s = v.session;
  const ends = Math.min(Date.parse(s.expires_at), Date.parse(s.absolute_expires_at));
  return {
    session: {
      sid,
      expires: new Date(ends),
      user: { user_id: v.user.username ?? v.user.id, email: v.user.email },
    },
  };
}

/** What a refusal says, in sleepless's words where it had some. */
function refusal(e: HallpassError, who: string): Answer {
  switch (e.code) {
    case "username_taken": return { error: "Username is already registered: " + who };
    case "email_taken": return { error: "Email already in use: " + who };
    case "weak_password": return { error: "Password is too weak: " + (e.problem?.detail ?? "") };
    case "invalid_credentials":
    case "user_inactive": return { error: "Denied" };
    case "user_not_found": return { error: "User not found: " + who };
    case "invalid_code": return { error: "Denied" };
    default: return { error: e.problem?.detail ?? e.message, code: e.code };
  }
}

/** The facade over one client (and, with `cache`, a session cache). */
function facade(client: HallpassClient, cache: boolean): SleeplessApi {
  const sessions = cache ? new Sessions(client) : null;
  const check = (sid: string) => (sessions ? sessions.check(sid) : client.getSession(sid));
  // Runs `work`; a HallpassError the caller can act on becomes `done(onRefusal(e))`,
  // anything else (hallpass unreachable, a bug) goes to `fail`.
  const run = (work: () => Promise<Answer>, done: Done, fail: Fail | undefined, onRefusal: (e: HallpassError) => Answer) => {
    work().then(
      (r) => done(r),
      (e: unknown) => {
        if (e instanceof HallpassError && e.status >= 400 && e.status < 500 && e.status !== 429) done(onRefusal(e));
        else if (fail) fail(e);
        else throw e;
      },
    );
  };
  const validSid = (sid: unknown): sid is string => typeof sid === "string" && sid.length > 0 && sid.length <= 512;

  return {
    register(email, user_id, password, done, fail) {
      if (!SAFE_NAME.test("" + user_id)) return done({ error: "Username contains disallowed characters", user_id });
      if (("" + password).length < 8) return done({ error: "Password is too short" });
      run(async () => {
        await client.register({ username: "" + user_id, email: "" + email, password: "" + password });
        return { user_id };
      }, done, fail, (e) => refusal(e, e.code === "email_taken" ? "" + email : "" + user_id));
    },

    unregister(uid_or_email, password, done, fail) {
      // Stricter than sleepless's MariaDB module: the password must be right.
      run(async () => {
        const r = await client.login({ login: "" + uid_or_email, password: "" + password });
        if (r.kind === "session") await client.endSession(r.token);
        await client.deleteUser("" + uid_or_email);
        return {};
      }, done, fail, (e) => refusal(e, "" + uid_or_email));
    },

    authenticate(uid_or_email, password, done, fail) {
      run(async () => {
        const r = await client.login({ login: "" + uid_or_email, password: "" + password });
        if (r.kind !== "session") return { error: "Second factor required", mfa: r };
        const v = await client.getSession(r.token);
        return sessionShape(r.token, v);
      }, done, fail, (e) => refusal(e, "" + uid_or_email));
    },

    get_user(uid_or_email, done, fail) {
      run(async () => {
        const u = await client.getUser("" + uid_or_email);
        if (!u.active) return {};
        return { user: { user_id: u.username ?? u.id, email: u.email, created: new Date(u.created_at) } };
      }, done, fail, () => ({}));
    },

    get_session(sid, done, fail) {
      if (!validSid(sid)) return done({});
      run(async () => sessionShape(sid, await check(sid)), done, fail, () => ({}));
    },

    freshen_session(sid, done, fail) {
      if (!validSid(sid)) return done({});
      run(async () => {
        await client.freshenSession(sid);
        return sessionShape(sid, await client.getSession(sid));
      }, done, fail, () => ({}));
    },

    end_session(sid, done, fail) {
      if (!validSid(sid)) return done({});
      run(async () => {
        if (sessions) await sessions.end(sid);
        else await client.endSession(sid);
        return {};
      }, done, fail, () => ({}));
    },

    reset_password_code(uid_or_email, done, fail) {
      run(async () => {
        const r = await client.createResetCode("" + uid_or_email);
        return { code: r?.code };
      }, done, fail, (e) => refusal(e, "" + uid_or_email));
    },

    reset_password(reset_code, new_password, done, fail) {
      if (typeof reset_code !== "string" || reset_code === "") return done({ error: "Denied" });
      run(async () => {
        const r = await client.redeemResetCode(reset_code, "" + new_password);
        const u = await client.getUser(r.user_id);
        return { user_id: u.username ?? u.id };
      }, done, fail, (e) => refusal(e, ""));
    },

    destroy() {
      void sessions?.close();
    },
  };
}

function clientOf(opts: SleeplessOptions): HallpassClient {
  const url = opts.url ?? process.env.HALLPASS_URL;
  const key = opts.api_key ?? process.env.HALLPASS_API_KEY;
  if (!url || !key) throw new Error("hallpass: give opts.url and opts.api_key (or set HALLPASS_URL and HALLPASS_API_KEY)");
  return new HallpassClient({ baseUrl: url, apiKey: key });
}

/**
 * sleepless-sessions' `create(opts, done, fail)`: checks that hallpass answers, then calls
 * `done(api)`; `fail(error)` when it does not.
 */
export function create(opts: SleeplessOptions, done: (api: SleeplessApi) => void, fail?: Fail): void {
  let client: HallpassClient;
  try {
    client = clientOf(opts);
  } catch (e) {
    if (fail) return fail(e);
    throw e;
  }
  client.readyz().then(
    () => done(facade(client, opts.cache ?? true)),
    (e: unknown) => {
      if (fail) fail(e);
      else throw e;
    },
  );
}

let fromEnv: SleeplessApi | null = null;
function envApi(): SleeplessApi {
  fromEnv ??= facade(clientOf({}), false);
  return fromEnv;
}

/**
 * The functions ready to call, configured from HALLPASS_URL and HALLPASS_API_KEY on first
 * use (like sleepless-sessions' `local` module, which needed no create()). No session cache,
 * so a script ends when its work does.
 */
export const env: SleeplessApi = {
  register: (...a) => envApi().register(...a),
  unregister: (...a) => envApi().unregister(...a),
  authenticate: (...a) => envApi().authenticate(...a),
  get_user: (...a) => envApi().get_user(...a),
  get_session: (...a) => envApi().get_session(...a),
  freshen_session: (...a) => envApi().freshen_session(...a),
  end_session: (...a) => envApi().end_session(...a),
  reset_password_code: (...a) => envApi().reset_password_code(...a),
  reset_password: (...a) => envApi().reset_password(...a),
  destroy: () => envApi().destroy(),
};

/** sleepless-sessions' module layout: `require(...).mariadb.create(...)`, `require(...).local`. */
export const mariadb = { create };
export const local = env;
