//! Second factors: TOTP (RFC 6238) and recovery codes, as storage keeps them and as the
//! service checks them.
//!
//! - **TOTP** secrets are 160 random bits, stored only sealed by the server secret
//!   ([`crate::server_secret`]), bound to the user's row (`totp|<scope>|<user id>`). A TOTP
//!   starts *pending* (enrolled, not yet proven) and becomes *confirmed* by a first good
//!   code. Codes are SHA-1, 6 digits, 30 s steps, one step either side; the step a code
//!   matched is what storage compares and sets ([`crate::Store::accept_totp_step`]): a step
//!   is accepted only while it is greater than the last accepted one, in the same
//!   statement that records it, so a code works once per user even across processes.
//! - **Recovery codes**: ten per set, 80 random bits each (`xxxx-xxxx-xxxx-xxxx` in a
//!   32-letter alphabet without look-alikes), shown once and stored as SHA-256 of the user
//!   id and the normalised code; using one deletes its row (one `DELETE`, so of racing
//!   uses exactly one wins). A new set replaces the old one in one transaction.
//! - **MFA challenges** are flows ([`crate::flow`], kind [`crate::FlowKind::MfaChallenge`]):
//!   a login whose first factor was right answers a challenge instead of a session.

use crate::secret::TokenHash;
use std::fmt;
use time::OffsetDateTime;
use uuid::Uuid;

/// Digits of a TOTP code.
pub const TOTP_DIGITS: u8 = 6;
/// Seconds of a TOTP step.
pub const TOTP_STEP_SECS: u64 = 30;
/// Steps accepted either side of now.
pub const TOTP_SKEW: u16 = 1;
/// Recovery codes in a set.
pub const RECOVERY_CODES: usize = 10;
/// Wrong answers one MFA challenge takes before it is ended.
pub const CHALLENGE_MAX_GUESSES: u32 = 5;
/// How long an MFA challenge lives.
pub const CHALLENGE_TTL: time::Duration = time::Duration::minutes(5);

/// A user's TOTP as storage keeps it.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpRecord {
    /// The secret, sealed by the server secret (`hp1.`...).
    pub secret: String,
    /// Whether a first code proved it.
    pub confirmed: bool,
    /// The last accepted time step (`None`: none yet).
    pub last_step: Option<i64>,
    /// When it was enrolled.
    pub created_at: OffsetDateTime,
}

impl fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpRecord")
            .field("secret", &"***")
            .field("confirmed", &self.confirmed)
            .field("last_step", &self.last_step)
            .finish()
    }
}

/// A user's second factors as one read gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MfaState {
    /// The TOTP, pending or confirmed.
    pub totp: Option<TotpRecord>,
    /// Unused recovery codes.
    pub recovery_codes: u32,
    /// Registered passkeys (see [`crate::passkey`]).
    pub passkeys: u32,
}

impl MfaState {
    /// Whether the user has a second factor a login must pass (a confirmed TOTP or a
    /// passkey).
    pub fn enabled(&self) -> bool {
        self.totp_confirmed() || self.passkeys > 0
    }
    /// Whether the user has a confirmed TOTP.
    pub fn totp_confirmed(&self) -> bool {
        self.totp.as_ref().is_some_and(|t| t.confirmed)
    }
}

/// What changes with a factor: the new set of recovery codes (hashes) and the session to
/// keep when the user's other sessions end.
#[derive(Debug, Clone)]
pub struct FactorChange {
    /// The hashes of a new set of recovery codes, replacing the old set (empty: keep it).
    pub recovery_codes: Vec<TokenHash>,
    /// Now.
    pub at: OffsetDateTime,
    /// The session that made the change, kept when the others end.
    pub keep_session: Option<Uuid>,
    /// The outbox rows of the change's events (webhooks), written with it.
    pub outbox: Vec<crate::outbox::OutboxMessage>,
}

/// The AAD a TOTP secret is sealed with: its row.
pub fn totp_aad(scope: &crate::Scope, user_id: Uuid) -> Vec<u8> {
    format!("totp|{scope}|{user_id}").into_bytes()
}

/// A fresh 160-bit TOTP secret (RFC 4226's recommended length).
pub fn new_totp_secret() -> Vec<u8> {
    crate::secret::random_bytes()[..20].to_vec()
}

/// The TOTP of `secret` (SHA-1, `digits` digits, 30 s, ±1 step); `account` and `issuer`
/// only label the `otpauth://` URI (a `:` in either is replaced, as the URI format needs).
pub fn totp(secret: &[u8], digits: u8, account: &str, issuer: &str) -> Result<totp_rs::Totp, String> {
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(digits)
        .with_skew(TOTP_SKEW)
        .with_step_duration(TOTP_STEP_SECS)
        .with_secret(secret.to_vec())
        .with_account_name(account.replace(':', "_"))
        .with_issuer(Some(issuer.replace(':', "_")))
        .build()
        .map_err(|e| format!("cannot build a TOTP: {e}"))
}

/// The time step `code` matches at `now` for `secret` (6 digits), or `None`.
pub fn check_totp(secret: &[u8], code: &str, now: OffsetDateTime) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != usize::from(TOTP_DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let unix = u64::try_from(now.unix_timestamp()).ok()?;
    let totp = totp(secret, TOTP_DIGITS, "x", "x").ok()?;
    totp.check(&code, unix).and_then(|step| i64::try_from(step).ok())
}

/// The alphabet of recovery codes: 31 digits and lower-case letters, without 0/o and
/// 1/l/i. Sixteen letters: about 79 bits.
const RECOVERY_ALPHABET: &[u8; 31] = b"23456789abcdefghjkmnpqrstuvwxyz";

/// A fresh set of recovery codes (as shown to the user).
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut code = String::with_capacity(19);
            let mut n = 0;
            while n < 16 {
                for b in crate::secret::random_bytes() {
                    // Five bits a letter, rejecting the one value past the alphabet (no bias).
                    let v = usize::from(b & 0x1f);
                    if v >= RECOVERY_ALPHABET.len() || n == 16 {
                        continue;
                    }
                    if n > 0 && n % 4 == 0 {
                        code.push('-');
                    }
                    code.push(char::from(RECOVERY_ALPHABET[v]));
                    n += 1;
                }
            }
            code
        })
        .collect()
}

/// What storage keeps of a recovery code of `user_id`: SHA-256 of the user id and the
/// code as typed, lower-cased, without spaces and dashes.
pub fn recovery_code_hash(user_id: Uuid, code: &str) -> TokenHash {
    let normal: String =
        code.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_lowercase).collect();
    TokenHash::of(&format!("recovery|{user_id}|{normal}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B: the SHA-1 test vectors (8 digits, secret "12345678901234567890").
    #[test]
    fn rfc6238_sha1_vectors() {
        let secret = b"12345678901234567890";
        let totp = totp(secret, 8, "rfc", "hallpass").expect("builds");
        for (t, code) in [
            (59u64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(totp.generate(t).to_string(), code, "at {t}");
            assert_eq!(totp.check(code, t), Some(t / 30), "checks at {t}");
        }
        // Six digits are the last six of the eight.
        let at = OffsetDateTime::from_unix_timestamp(1111111109).expect("time");
        assert_eq!(check_totp(secret, "081804", at), Some(1111111109 / 30));
        assert_eq!(check_totp(secret, "081805", at), None);
        // One step either side, not two.
        assert_eq!(check_totp(secret, "081804", at + time::Duration::seconds(30)), Some(1111111109 / 30));
        assert_eq!(check_totp(secret, "081804", at + time::Duration::seconds(61)), None);
        assert_eq!(check_totp(secret, "08180", at), None);
    }

    #[test]
    fn recovery_codes_are_ten_distinct_and_hash_per_user() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let set: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(set.len(), RECOVERY_CODES);
        for c in &codes {
            assert_eq!(c.len(), 19, "{c}");
            assert!(c.bytes().all(|b| b == b'-' || RECOVERY_ALPHABET.contains(&b)), "{c}");
        }
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(
            recovery_code_hash(a, &codes[0]),
            recovery_code_hash(a, &codes[0].to_uppercase().replace('-', " "))
        );
        assert_ne!(recovery_code_hash(a, &codes[0]), recovery_code_hash(b, &codes[0]));
    }
}
