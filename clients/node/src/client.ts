// HallpassClient: one method per operation of docs/openapi.json (OPERATIONS maps each to
// its method), with the request and answer types generated from it (schema.ts). Calls time
// out; GETs are retried on transport errors and 503s, any call when the connection was
// refused before anything was sent; nothing else is retried.
import type { components } from "./schema";
import { HallpassError, TransportError, type Problem } from "./errors";
import { ChangeStream } from "./changes";

type S = components["schemas"];
export type User = S["User"];
export type Session = S["Session"];
export type SessionWithUser = S["SessionWithUser"];
export type SessionResponse = S["SessionResponse"];
export type SessionList = S["SessionList"];
export type Login = S["Login"];
export type LoginRequest = S["LoginRequest"];
export type LoginResponse = S["LoginResponse"];
export type MfaChallengeResponse = S["MfaChallengeResponse"];
export type MfaLoginRequest = S["MfaLoginRequest"];
export type RegisterRequest = S["RegisterRequest"];
export type UpdateUserRequest = S["UpdateUserRequest"];
export type UserList = S["UserList"];
export type EventList = S["EventList"];
export type LoginStats = S["LoginStats"];
export type ResetCodeResponse = S["ResetCodeResponse"];
export type RedeemResetResponse = S["RedeemResetResponse"];
export type ConfirmationResponse = S["ConfirmationResponse"];
export type Identity = S["Identity"];
export type IdentityList = S["IdentityList"];
export type LinkProviderRequest = S["LinkProviderRequest"];
export type UpdateProviderRequest = S["UpdateProviderRequest"];
export type OidcStartResponse = S["OidcStartResponse"];
export type OidcExchangeRequest = S["OidcExchangeRequest"];
export type OidcExchangeOk = S["OidcExchangeOk"];
export type TotpEnrolResponse = S["TotpEnrolResponse"];
export type RecoveryCodesResponse = S["RecoveryCodesResponse"];
export type Health = S["Health"];
export type Passkey = S["Passkey"];
export type PasskeyList = S["PasskeyList"];
export type PasskeyOptionsResponse = S["PasskeyOptionsResponse"];
export type PasskeyLoginFinishRequest = S["PasskeyLoginFinishRequest"];
export type Webhook = S["WebhookDto"];
export type WebhookWithSecret = S["WebhookWithSecret"];
export type WebhookList = S["WebhookList"];
export type CreateWebhookRequest = S["CreateWebhookRequest"];
export type UpdateWebhookRequest = S["UpdateWebhookRequest"];
export type Delivery = S["DeliveryDto"];
export type DeliveryList = S["DeliveryList"];

/** `(METHOD path) → client method` for every operation of the API (a test compares it with docs/openapi.json). */
export const OPERATIONS: Record<string, string> = {
  "GET /healthz": "healthz",
  "GET /readyz": "readyz",
  "GET /metrics": "metrics",
  "GET /openapi.json": "openapi",
  "GET /v1/changes": "changes",
  "POST /v1/users": "register",
  "GET /v1/users": "listUsers",
  "GET /v1/users/{ref}": "getUser",
  "PATCH /v1/users/{ref}": "updateUser",
  "DELETE /v1/users/{ref}": "deleteUser",
  "PUT /v1/users/{ref}/password": "setPassword",
  "POST /v1/users/{ref}/confirmation": "sendConfirmation",
  "POST /v1/confirmations/redeem": "redeemConfirmation",
  "GET /v1/users/{ref}/logins": "loginHistory",
  "GET /v1/stats/logins": "loginStats",
  "POST /v1/sessions": "login",
  "POST /v1/sessions/mfa": "answerMfa",
  "GET /v1/session": "getSession",
  "POST /v1/session/freshen": "freshenSession",
  "PATCH /v1/session": "patchSessionData",
  "DELETE /v1/session": "endSession",
  "DELETE /v1/session/others": "endOtherSessions",
  "GET /v1/users/{ref}/sessions": "listUserSessions",
  "DELETE /v1/users/{ref}/sessions": "endUserSessions",
  "DELETE /v1/users/{ref}/sessions/{session_id}": "endUserSession",
  "POST /v1/password-resets": "createResetCode",
  "POST /v1/password-resets/redeem": "redeemResetCode",
  "POST /v1/email-codes": "sendEmailCode",
  "GET /v1/users/{ref}/providers": "listProviders",
  "PUT /v1/users/{ref}/providers/{provider}": "linkProvider",
  "GET /v1/users/{ref}/providers/{provider}": "getProvider",
  "PATCH /v1/users/{ref}/providers/{provider}": "updateProvider",
  "DELETE /v1/users/{ref}/providers/{provider}": "unlinkProvider",
  "POST /v1/oidc/{provider}/start": "oidcStart",
  "GET /v1/oidc/{provider}/callback": "oidcCallback",
  "POST /v1/oidc/exchange": "oidcExchange",
  "POST /v1/users/{ref}/mfa/totp": "enrolTotp",
  "POST /v1/users/{ref}/mfa/totp/confirm": "confirmTotp",
  "DELETE /v1/users/{ref}/mfa/totp": "deleteTotp",
  "POST /v1/users/{ref}/mfa/recovery-codes": "newRecoveryCodes",
  "DELETE /v1/users/{ref}/mfa": "removeMfa",
  "POST /v1/users/{ref}/passkeys/register/start": "passkeyRegisterStart",
  "POST /v1/users/{ref}/passkeys/register/finish": "passkeyRegisterFinish",
  "GET /v1/users/{ref}/passkeys": "listPasskeys",
  "PATCH /v1/users/{ref}/passkeys/{id}": "renamePasskey",
  "DELETE /v1/users/{ref}/passkeys/{id}": "deletePasskey",
  "POST /v1/passkeys/login/start": "passkeyLoginStart",
  "POST /v1/passkeys/login/finish": "passkeyLoginFinish",
  "POST /v1/webhooks": "createWebhook",
  "GET /v1/webhooks": "listWebhooks",
  "GET /v1/webhooks/{id}": "getWebhook",
  "PATCH /v1/webhooks/{id}": "updateWebhook",
  "DELETE /v1/webhooks/{id}": "deleteWebhook",
  "POST /v1/webhooks/{id}/rotate-secret": "rotateWebhookSecret",
  "GET /v1/webhooks/{id}/deliveries": "listWebhookDeliveries",
  "POST /v1/webhooks/{id}/deliveries/{delivery}/retry": "retryWebhookDelivery",
};

export interface ClientOptions {
  /** The server's root, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** The scope's API key. */
  apiKey: string;
  /** The time a whole call may take (default 10 000 ms). */
  timeoutMs?: number;
  /** How often a safe call is tried again (default 2). */
  retries?: number;
  /** The first delay before a retry, doubling (default 50 ms). */
  retryDelayMs?: number;
  /** A fetch to use instead of the global one. */
  fetch?: typeof fetch;
}

interface Call {
  method: string;
  path: string[];
  query?: Record<string, string | number | boolean | null | undefined>;
  token?: string | null;
  body?: unknown;
  contentType?: string;
}

/** What a login answered: a session, or a second-factor challenge. */
export type LoginOutcome = ({ kind: "session" } & LoginResponse) | ({ kind: "mfa" } & MfaChallengeResponse);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function refusedBeforeSending(e: unknown): boolean {
  let c: unknown = e;
  for (let i = 0; i < 4 && c; i++) {
    if ((c as { code?: string }).code === "ECONNREFUSED") return true;
    c = (c as { cause?: unknown }).cause;
  }
  return false;
}

/** A client of one hallpass server and one scope (the API key's). */
export class HallpassClient {
  readonly baseUrl: string;
  private readonly auth: string;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly retryDelayMs: number;
  private readonly fetch: typeof fetch;

  constructor(options: ClientOptions) {
    const u = new URL(options.baseUrl);
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new TypeError(`not an http(s) URL: ${options.baseUrl}`);
    this.baseUrl = u.href.replace(/\/+$/, "");
    this.auth = `Bearer ${options.apiKey}`;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.retries = options.retries ?? 2;
    this.retryDelayMs = options.retryDelayMs ?? 50;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** The URL of `path` (each segment percent-encoded) with `query`. */
  url(path: string[], query?: Call["query"]): string {
    let s = this.baseUrl + "/" + path.map(encodeURIComponent).join("/");
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null) q.append(k, String(v));
    const qs = q.toString();
    if (qs) s += "?" + qs;
    return s;
  }

  private async send(call: Call): Promise<Response> {
    const idempotent = call.method === "GET";
    const headers: Record<string, string> = { authorization: this.auth };
    if (call.token != null) headers["x-session-token"] = call.token;
    let body: string | undefined;
    if (call.body !== undefined) {
      body = JSON.stringify(call.body);
      headers["content-type"] = call.contentType ?? "application/json";
    }
    const url = this.url(call.path, call.query);
    for (let attempt = 0; ; attempt++) {
      const delay = this.retryDelayMs * 2 ** Math.min(attempt, 10);
      let res: Response;
      try {
        res = await this.fetch(url, { method: call.method, headers, body, redirect: "manual", signal: AbortSignal.timeout(this.timeoutMs) });
      } catch (e) {
        if (attempt < this.retries && (idempotent || refusedBeforeSending(e))) {
          await sleep(delay);
          continue;
        }
        throw new TransportError(`could not reach hallpass: ${(e as Error).message}`, { cause: e });
      }
      if (idempotent && res.status === 503 && attempt < this.retries) {
        const ra = Number(res.headers.get("retry-after"));
        const wait = Number.isFinite(ra) && ra > 0 ? ra * 1000 : delay;
        if (wait < this.timeoutMs) {
          await res.arrayBuffer().catch(() => undefined);
          await sleep(wait);
          continue;
        }
      }
      return res;
    }
  }

  private async ok(call: Call): Promise<Response> {
    const res = await this.send(call);
    if (res.status < 400) return res;
    const text = await res.text().catch(() => "");
    let problem: Problem | null = null;
    try {
      const v = JSON.parse(text);
      if (v && typeof v.code === "string") problem = v;
    } catch {
      // not a problem document
    }
    const ra = res.headers.get("retry-after");
    throw new HallpassError(res.status, problem, text, ra && /^\d+$/.test(ra) ? Number(ra) : null);
  }

  private async json<T>(call: Call): Promise<T> {
    const res = await this.ok(call);
    return (await res.json()) as T;
  }

  private async empty(call: Call): Promise<void> {
    const res = await this.ok(call);
    await res.arrayBuffer();
  }

  // ---- probes and documents

  /** `GET /healthz`. */
  healthz(): Promise<Health> { return this.json({ method: "GET", path: ["healthz"] }); }
  /** `GET /readyz` (503 while storage is unreachable). */
  readyz(): Promise<Health> { return this.json({ method: "GET", path: ["readyz"] }); }
  /** `GET /metrics`: the Prometheus text. */
  async metrics(): Promise<string> { return (await this.ok({ method: "GET", path: ["metrics"] })).text(); }
  /** `GET /openapi.json`. */
  openapi(): Promise<Record<string, unknown>> { return this.json({ method: "GET", path: ["openapi.json"] }); }

  // ---- users

  /** `POST /v1/users`: registers a user. */
  register(req: RegisterRequest): Promise<User> { return this.json({ method: "POST", path: ["v1", "users"], body: req }); }
  /** `GET /v1/users/{ref}`: by id, username or email. */
  getUser(ref: string): Promise<User> { return this.json({ method: "GET", path: ["v1", "users", ref] }); }
  /** `GET /v1/users`: a page of users. */
  listUsers(q: { query?: string; group?: string; active?: boolean; limit?: number; cursor?: string } = {}): Promise<UserList> {
    return this.json({ method: "GET", path: ["v1", "users"], query: q });
  }
  /** `PATCH /v1/users/{ref}`: changes the fields given (`null` removes username or email). */
  updateUser(ref: string, req: UpdateUserRequest): Promise<User> { return this.json({ method: "PATCH", path: ["v1", "users", ref], body: req }); }
  /** `DELETE /v1/users/{ref}`. */
  deleteUser(ref: string): Promise<void> { return this.empty({ method: "DELETE", path: ["v1", "users", ref] }); }
  /** `PUT /v1/users/{ref}/password` (every session of the user ends). */
  setPassword(ref: string, password: string): Promise<void> { return this.empty({ method: "PUT", path: ["v1", "users", ref, "password"], body: { password } }); }
  /** `POST /v1/users/{ref}/confirmation`: sends the confirmation mail. */
  sendConfirmation(ref: string): Promise<ConfirmationResponse> { return this.json({ method: "POST", path: ["v1", "users", ref, "confirmation"] }); }
  /** `POST /v1/confirmations/redeem`. */
  redeemConfirmation(code: string): Promise<User> { return this.json({ method: "POST", path: ["v1", "confirmations", "redeem"], body: { code } }); }
  /** `GET /v1/users/{ref}/logins`: login history, newest first. */
  loginHistory(ref: string, q: { limit?: number; cursor?: string } = {}): Promise<EventList> { return this.json({ method: "GET", path: ["v1", "users", ref, "logins"], query: q }); }
  /** `GET /v1/stats/logins`. */
  loginStats(q: { from?: string; to?: string; bucket?: "hour" | "day" } = {}): Promise<LoginStats> { return this.json({ method: "GET", path: ["v1", "stats", "logins"], query: q }); }

  // ---- sessions

  /** `POST /v1/sessions`: a login; `kind` says whether a session was made or a second factor is needed. */
  async login(req: LoginRequest): Promise<LoginOutcome> {
    const res = await this.ok({ method: "POST", path: ["v1", "sessions"], body: req });
    const v = await res.json();
    return res.status === 201 ? { kind: "session", ...v } : { kind: "mfa", ...v };
  }
  /** `POST /v1/sessions/mfa`. */
  answerMfa(req: MfaLoginRequest): Promise<LoginResponse> { return this.json({ method: "POST", path: ["v1", "sessions", "mfa"], body: req }); }
  /** `GET /v1/session`: asks the server every time (Sessions.check answers from memory). */
  getSession(token: string): Promise<SessionWithUser> { return this.json({ method: "GET", path: ["v1", "session"], token }); }
  /** `POST /v1/session/freshen`. */
  freshenSession(token: string): Promise<SessionResponse> { return this.json({ method: "POST", path: ["v1", "session", "freshen"], token }); }
  /** `PATCH /v1/session`: a JSON merge patch of the session's data. */
  patchSessionData(token: string, patch: Record<string, unknown>): Promise<SessionResponse> {
    return this.json({ method: "PATCH", path: ["v1", "session"], token, body: patch, contentType: "application/merge-patch+json" });
  }
  /** `DELETE /v1/session`: logout (fine when already ended). */
  endSession(token: string): Promise<void> { return this.empty({ method: "DELETE", path: ["v1", "session"], token }); }
  /** `DELETE /v1/session/others`. */
  endOtherSessions(token: string): Promise<void> { return this.empty({ method: "DELETE", path: ["v1", "session", "others"], token }); }
  /** `GET /v1/users/{ref}/sessions`. */
  listUserSessions(ref: string): Promise<SessionList> { return this.json({ method: "GET", path: ["v1", "users", ref, "sessions"] }); }
  /** `DELETE /v1/users/{ref}/sessions`. */
  endUserSessions(ref: string): Promise<void> { return this.empty({ method: "DELETE", path: ["v1", "users", ref, "sessions"] }); }
  /** `DELETE /v1/users/{ref}/sessions/{session_id}`. */
  endUserSession(ref: string, sessionId: string): Promise<void> { return this.empty({ method: "DELETE", path: ["v1", "users", ref, "sessions", sessionId] }); }

  // ---- resets and codes

  /** `POST /v1/password-resets` `{login}` → the code; with `sendEmail` the code goes to the user's mail only (202, nothing returned). */
  async createResetCode(login: string, opts: { sendEmail?: boolean } = {}): Promise<ResetCodeResponse | null> {
    const res = await this.ok({ method: "POST", path: ["v1", "password-resets"], body: opts.sendEmail ? { login, send_email: true } : { login } });
    if (res.status === 202) { await res.arrayBuffer(); return null; }
    return (await res.json()) as ResetCodeResponse;
  }
  /** `POST /v1/password-resets/redeem` (every session of the user ends). */
  redeemResetCode(code: string, password: string): Promise<RedeemResetResponse> { return this.json({ method: "POST", path: ["v1", "password-resets", "redeem"], body: { code, password } }); }
  /** `POST /v1/email-codes`: mails a sign-in code. */
  sendEmailCode(email: string): Promise<void> { return this.empty({ method: "POST", path: ["v1", "email-codes"], body: { email } }); }

  // ---- providers

  /** `GET /v1/users/{ref}/providers`. */
  listProviders(ref: string): Promise<IdentityList> { return this.json({ method: "GET", path: ["v1", "users", ref, "providers"] }); }
  /** `PUT /v1/users/{ref}/providers/{provider}`. */
  linkProvider(ref: string, provider: string, req: LinkProviderRequest): Promise<Identity> { return this.json({ method: "PUT", path: ["v1", "users", ref, "providers", provider], body: req }); }
  /** `GET /v1/users/{ref}/providers/{provider}`. */
  getProvider(ref: string, provider: string): Promise<Identity> { return this.json({ method: "GET", path: ["v1", "users", ref, "providers", provider] }); }
  /** `PATCH /v1/users/{ref}/providers/{provider}`. */
  updateProvider(ref: string, provider: string, req: UpdateProviderRequest): Promise<Identity> { return this.json({ method: "PATCH", path: ["v1", "users", ref, "providers", provider], body: req }); }
  /** `DELETE /v1/users/{ref}/providers/{provider}`. */
  unlinkProvider(ref: string, provider: string): Promise<void> { return this.empty({ method: "DELETE", path: ["v1", "users", ref, "providers", provider] }); }

  // ---- OIDC

  /** `POST /v1/oidc/{provider}/start`; with `linkToken` the flow links to that session's user. */
  oidcStart(provider: string, returnTo: string, linkToken?: string): Promise<OidcStartResponse> {
    return this.json({ method: "POST", path: ["v1", "oidc", provider, "start"], body: { return_to: returnTo }, token: linkToken });
  }
  /** `GET /v1/oidc/{provider}/callback` (what a browser calls): the redirect's Location. */
  async oidcCallback(provider: string, query: Record<string, string>): Promise<string> {
    const res = await this.ok({ method: "GET", path: ["v1", "oidc", provider, "callback"], query });
    await res.arrayBuffer();
    return res.headers.get("location") ?? "";
  }
  /** `POST /v1/oidc/exchange`: 201 a login, 200 a link or a challenge. */
  async oidcExchange(req: OidcExchangeRequest, linkToken?: string): Promise<({ kind: "session" } & LoginResponse) | ({ kind: "ok" } & OidcExchangeOk)> {
    const res = await this.ok({ method: "POST", path: ["v1", "oidc", "exchange"], body: req, token: linkToken });
    const v = await res.json();
    return res.status === 201 ? { kind: "session", ...v } : { kind: "ok", ...v };
  }

  // ---- second factors

  /** `POST /v1/users/{ref}/mfa/totp`. */
  enrolTotp(ref: string): Promise<TotpEnrolResponse> { return this.json({ method: "POST", path: ["v1", "users", ref, "mfa", "totp"] }); }
  /** `POST /v1/users/{ref}/mfa/totp/confirm` (`keep`: the session to keep). */
  confirmTotp(ref: string, code: string, keep?: string): Promise<RecoveryCodesResponse> { return this.json({ method: "POST", path: ["v1", "users", ref, "mfa", "totp", "confirm"], body: { code }, token: keep }); }
  /** `DELETE /v1/users/{ref}/mfa/totp`. */
  deleteTotp(ref: string, keep?: string): Promise<void> { return this.empty({ method: "DELETE", path: ["v1", "users", ref, "mfa", "totp"], token: keep }); }
  /** `POST /v1/users/{ref}/mfa/recovery-codes`. */
  newRecoveryCodes(ref: string): Promise<RecoveryCodesResponse> { return this.json({ method: "POST", path: ["v1", "users", ref, "mfa", "recovery-codes"] }); }
  /** `DELETE /v1/users/{ref}/mfa`. */
  removeMfa(ref: string): Promise<void> { return this.empty({ method: "DELETE", path: ["v1", "users", ref, "mfa"] }); }

  // ---- passkeys

  /** `POST /v1/users/{ref}/passkeys/register/start`: options for `navigator.credentials.create`. */
  passkeyRegisterStart(ref: string): Promise<PasskeyOptionsResponse> { return this.json({ method: "POST", path: ["v1", "users", ref, "passkeys", "register", "start"] }); }
  /** `POST /v1/users/{ref}/passkeys/register/finish` (`keep`: the session to keep). */
  passkeyRegisterFinish(ref: string, flow: string, credential: unknown, name?: string, keep?: string): Promise<Passkey> { return this.json({ method: "POST", path: ["v1", "users", ref, "passkeys", "register", "finish"], body: { flow, credential, name }, token: keep }); }
  /** `GET /v1/users/{ref}/passkeys`. */
  listPasskeys(ref: string): Promise<PasskeyList> { return this.json({ method: "GET", path: ["v1", "users", ref, "passkeys"] }); }
  /** `PATCH /v1/users/{ref}/passkeys/{id}`: renames it. */
  renamePasskey(ref: string, id: string, name: string): Promise<Passkey> { return this.json({ method: "PATCH", path: ["v1", "users", ref, "passkeys", id], body: { name } }); }
  /** `DELETE /v1/users/{ref}/passkeys/{id}` (`keep`: the session to keep). */
  deletePasskey(ref: string, id: string, keep?: string): Promise<void> { return this.empty({ method: "DELETE", path: ["v1", "users", ref, "passkeys", id], token: keep }); }
  /** `POST /v1/passkeys/login/start`: options for `navigator.credentials.get` (discoverable without `login`). */
  passkeyLoginStart(login?: string): Promise<PasskeyOptionsResponse> { return this.json({ method: "POST", path: ["v1", "passkeys", "login", "start"], body: login === undefined ? {} : { login } }); }
  /** `POST /v1/passkeys/login/finish`: a passwordless sign-in, answered as a login. */
  passkeyLoginFinish(req: PasskeyLoginFinishRequest): Promise<LoginResponse> { return this.json({ method: "POST", path: ["v1", "passkeys", "login", "finish"], body: req }); }

  // ---- webhooks

  /** `POST /v1/webhooks`: the `whsec_` secret is in this answer only. */
  createWebhook(req: CreateWebhookRequest): Promise<WebhookWithSecret> { return this.json({ method: "POST", path: ["v1", "webhooks"], body: req }); }
  /** `GET /v1/webhooks`. */
  listWebhooks(): Promise<WebhookList> { return this.json({ method: "GET", path: ["v1", "webhooks"] }); }
  /** `GET /v1/webhooks/{id}`. */
  getWebhook(id: string): Promise<Webhook> { return this.json({ method: "GET", path: ["v1", "webhooks", id] }); }
  /** `PATCH /v1/webhooks/{id}`. */
  updateWebhook(id: string, req: UpdateWebhookRequest): Promise<Webhook> { return this.json({ method: "PATCH", path: ["v1", "webhooks", id], body: req }); }
  /** `DELETE /v1/webhooks/{id}`. */
  deleteWebhook(id: string): Promise<void> { return this.empty({ method: "DELETE", path: ["v1", "webhooks", id] }); }
  /** `POST /v1/webhooks/{id}/rotate-secret`: the old secret signs too for the configured overlap. */
  rotateWebhookSecret(id: string): Promise<WebhookWithSecret> { return this.json({ method: "POST", path: ["v1", "webhooks", id, "rotate-secret"] }); }
  /** `GET /v1/webhooks/{id}/deliveries`. */
  listWebhookDeliveries(id: string, opts: { status?: string; limit?: number; cursor?: string } = {}): Promise<DeliveryList> { return this.json({ method: "GET", path: ["v1", "webhooks", id, "deliveries"], query: opts }); }
  /** `POST /v1/webhooks/{id}/deliveries/{delivery}/retry`. */
  retryWebhookDelivery(id: string, delivery: string): Promise<Delivery> { return this.json({ method: "POST", path: ["v1", "webhooks", id, "deliveries", delivery, "retry"] }); }

  // ---- the change stream

  /** `GET /v1/changes`, resuming after `lastEventId` when given. */
  async changes(lastEventId?: string | null, signal?: AbortSignal): Promise<ChangeStream> {
    const headers: Record<string, string> = { authorization: this.auth, accept: "text/event-stream" };
    if (lastEventId) headers["last-event-id"] = lastEventId;
    let res: Response;
    try {
      res = await this.fetch(this.url(["v1", "changes"]), { headers, signal });
    } catch (e) {
      throw new TransportError(`could not reach hallpass: ${(e as Error).message}`, { cause: e });
    }
    if (res.status !== 200 || !res.body) {
      const text = await res.text().catch(() => "");
      let problem: Problem | null = null;
      try { problem = JSON.parse(text); } catch { /* not a problem */ }
      throw new HallpassError(res.status, problem, text, null);
    }
    return new ChangeStream(res.body);
  }
}
