// The client's errors: HallpassError for a problem document the server answered (its
// `code` typed as ProblemCode), TransportError when nothing came back.
import type { components } from "./schema";

/** The problem codes the server documents; a newer server's codes still arrive as strings. */
export const PROBLEM_CODES = [
  "invalid_request", "invalid_code", "invalid_challenge", "invalid_state", "invalid_return_to",
  "invalid_flow", "passkey_registration_failed", "passkeys_not_configured", "invalid_passkey",
  "passkey_not_found", "passkey_already_registered", "webhook_not_found", "delivery_not_found",
  "mail_not_configured", "secret_key_not_configured", "weak_password", "unauthorized",
  "invalid_credentials", "invalid_factor", "mfa_required", "session_invalid", "identity_unknown",
  "user_inactive", "provider_unknown", "not_found", "user_not_found", "session_not_found",
  "provider_not_linked", "key_not_found", "method_not_allowed", "last_login_method",
  "mfa_already_enabled", "mfa_not_enabled", "username_taken", "email_taken", "identity_taken",
  "payload_too_large", "unsupported_media_type", "rate_limited", "internal", "provider_failed",
  "overloaded", "storage_unavailable",
] as const;

/** A problem's stable code: one of PROBLEM_CODES, or a code this client does not know yet. */
export type ProblemCode = (typeof PROBLEM_CODES)[number] | (string & {});

/** An RFC 9457 problem document as hallpass sends it. */
export type Problem = components["schemas"]["Problem"];

/** The server refused the call with a problem document (or an error status without one). */
export class HallpassError extends Error {
  readonly status: number;
  readonly code: ProblemCode;
  readonly problem: Problem | null;
  /** Retry-After of a 429 or 503, in seconds, when sent. */
  readonly retryAfter: number | null;

  constructor(status: number, problem: Problem | null, body: string, retryAfter: number | null) {
    super(problem ? `hallpass answered ${status}: ${problem.code} (${problem.detail})` : `unexpected answer ${status}: ${body.slice(0, 1024)}`);
    this.name = "HallpassError";
    this.status = status;
    this.code = problem?.code ?? "unexpected_status";
    this.problem = problem;
    this.retryAfter = retryAfter;
  }
}

/** No answer: connection refused or reset, timed out. */
export class TransportError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TransportError";
  }
}
