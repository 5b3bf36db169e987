//! Password hashes made by other systems, verified once and then replaced.
//!
//! Users imported from another system keep the hash that system made until their first good
//! login; the service then rehashes the password to the current Argon2id (the hasher reports
//! `needs_rehash` for every foreign hash). This module owns recognising those foreign
//! strings, bounding what verifying one may cost, and verifying it. It accepts exactly:
//!
//! | scheme | stored string |
//! |---|---|
//! | bcrypt | `$2a$`, `$2b$`, `$2y$` or `$2x$`, two-digit cost, `$`, 22 + 31 characters of bcrypt base64: 60 ASCII characters in all, e.g. `$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW` (`U*U`) |
//! | scrypt (PHC) | `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>`, salt and hash in unpadded standard base64 (as passlib and RustCrypto write them) |
//! | PBKDF2 (PHC) | `$pbkdf2-sha256$i=<rounds>,l=<hash bytes>$<salt>$<hash>` and `$pbkdf2-sha512$...`, base64 as for scrypt; `l` defaults to 32 and must equal the hash length |
//! | sleepless-sessions | `$sleepless-sha1$<salt>$<digest>`: see [`SLEEPLESS_SHA1_PREFIX`] |
//!
//! A string that starts like one of these but does not parse, or whose parameters would cost
//! more than the limits below, is refused: it never matches, and the caller logs why (never
//! the hash) and spends the time of one Argon2 hash so the refusal costs what a check costs.
//!
//! bcrypt is verified as the old system did: a password is cut to its first 72 bytes. `$2x$`
//! (crypt_blowfish's emulation of its own sign-extension bug) is verified as `$2a$`, which
//! agrees for passwords in ASCII; an `$2x$` hash of a password with bytes above 0x7f does not
//! verify, and that user must reset the password.

use scrypt::password_hash::PasswordVerifier as _;
use scrypt::password_hash::phc::PasswordHash;
use sha1::{Digest as _, Sha1};
use subtle::ConstantTimeEq as _;

/// Highest bcrypt cost verified (2^16 rounds of the key schedule: seconds, not minutes).
pub const BCRYPT_MAX_COST: u32 = 16;
/// Highest scrypt `ln` (log2 of N) verified.
pub const SCRYPT_MAX_LOG_N: u8 = 20;
/// Most memory one scrypt verification may take, in bytes: `128 * r * N`.
pub const SCRYPT_MAX_MEMORY: u64 = 256 * 1024 * 1024;
/// Most work one scrypt verification may take, in bytes mixed: `128 * r * N * p` (a
/// verification at the memory limit with p = 4).
pub const SCRYPT_MAX_WORK: u64 = 4 * SCRYPT_MAX_MEMORY;
/// Most PBKDF2 rounds verified.
pub const PBKDF2_MAX_ROUNDS: u32 = 10_000_000;

/// The prefix of a sleepless-sessions hash as the importer stores it.
///
/// sleepless-sessions keeps `pw_hash = hex(sha1(password + pw_salt))` beside a `pw_salt` of 40
/// hex digits, the password and the salt concatenated as strings (UTF-8). hallpass stores
/// the pair as one string:
///
/// ```text
/// $sleepless-sha1$<pw_salt: 40 hex digits, verbatim>$<pw_hash: 40 hex digits>
/// ```
///
/// The salt is hashed exactly as written (its case matters); the digest may be in either
/// case. Build it with [`sleepless_sha1_hash_string`].
pub const SLEEPLESS_SHA1_PREFIX: &str = "$sleepless-sha1$";

/// The stored form of a sleepless-sessions user's `pw_salt` and `pw_hash` (see
/// [`SLEEPLESS_SHA1_PREFIX`]). It does not check its input: pass the result to
/// [`super::is_supported_hash`] before storing it.
pub fn sleepless_sha1_hash_string(salt: &str, hex_digest: &str) -> String {
    format!("{SLEEPLESS_SHA1_PREFIX}{salt}${hex_digest}")
}

/// A foreign hash that parsed and is within the limits.
pub(super) enum Foreign<'a> {
    Bcrypt(&'a str),
    Scrypt(PasswordHash),
    Pbkdf2(PasswordHash),
    SleeplessSha1 { salt: &'a str, digest: [u8; 20] },
}

/// Why a string that looks foreign is refused; shown in logs, never holds the hash.
#[derive(Debug)]
pub(super) struct Refusal {
    pub(super) scheme: &'static str,
    pub(super) reason: String,
}

fn refuse(scheme: &'static str, reason: impl Into<String>) -> Refusal {
    Refusal { scheme, reason: reason.into() }
}

/// Recognises a foreign hash by its prefix. `Ok(None)`: not a foreign scheme (Argon2, or
/// something unknown, is the caller's business).
pub(super) fn parse(stored: &str) -> Result<Option<Foreign<'_>>, Refusal> {
    if ["$2a$", "$2b$", "$2y$", "$2x$"].iter().any(|p| stored.starts_with(p)) {
        parse_bcrypt(stored).map(Some)
    } else if stored.starts_with("$scrypt$") {
        parse_scrypt(stored).map(Some)
    } else if stored.starts_with("$pbkdf2-sha256$") || stored.starts_with("$pbkdf2-sha512$") {
        parse_pbkdf2(stored).map(Some)
    } else if let Some(rest) = stored.strip_prefix(SLEEPLESS_SHA1_PREFIX) {
        parse_sleepless(rest).map(Some)
    } else {
        Ok(None)
    }
}

fn parse_bcrypt(stored: &str) -> Result<Foreign<'_>, Refusal> {
    // `HashParts::from_str` checks the length (60 ASCII bytes), the `$`s, the version and
    // the base64 without panicking; the cost range is ours to check.
    let parts: bcrypt::HashParts =
        stored.parse().map_err(|e: bcrypt::BcryptError| refuse("bcrypt", format!("malformed: {e}")))?;
    let cost = parts.get_cost();
    if !(4..=BCRYPT_MAX_COST).contains(&cost) {
        return Err(refuse("bcrypt", format!("cost {cost} outside 4..={BCRYPT_MAX_COST}")));
    }
    Ok(Foreign::Bcrypt(stored))
}

/// Parses a PHC string with a salt and a hash.
fn parse_phc(scheme: &'static str, stored: &str) -> Result<PasswordHash, Refusal> {
    let parsed = PasswordHash::new(stored).map_err(|e| refuse(scheme, format!("malformed: {e}")))?;
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(refuse(scheme, "salt or hash missing"));
    }
    Ok(parsed)
}

fn parse_scrypt(stored: &str) -> Result<Foreign<'_>, Refusal> {
    const S: &str = "scrypt";
    let parsed = parse_phc(S, stored)?;
    // scrypt's own check computes `r * p` in u32, which overflows (a panic in debug builds)
    // for r, p >= 2^16: check that bound first, in u64.
    let r = parsed.params.get_decimal("r").map_or(8, u64::from);
    let p = parsed.params.get_decimal("p").map_or(1, u64::from);
    if r * p >= 1 << 30 {
        return Err(refuse(S, format!("r={r}, p={p}: r * p too large")));
    }
    let params = scrypt::Params::try_from(&parsed).map_err(|e| refuse(S, format!("parameters: {e}")))?;
    let (log_n, r, p) = (params.log_n(), u64::from(params.r()), u64::from(params.p()));
    if log_n > SCRYPT_MAX_LOG_N {
        return Err(refuse(S, format!("ln={log_n} above {SCRYPT_MAX_LOG_N}")));
    }
    // log_n <= 20 and r, p < 2^32: no overflow in u64 for memory; work is checked.
    let memory = 128 * r * (1u64 << log_n);
    if memory > SCRYPT_MAX_MEMORY {
        return Err(refuse(S, format!("needs {memory} bytes, above {SCRYPT_MAX_MEMORY}")));
    }
    match memory.checked_mul(p) {
        Some(work) if work <= SCRYPT_MAX_WORK => Ok(Foreign::Scrypt(parsed)),
        _ => Err(refuse(S, format!("p={p} with {memory} bytes is above {SCRYPT_MAX_WORK} bytes of work"))),
    }
}

fn parse_pbkdf2(stored: &str) -> Result<Foreign<'_>, Refusal> {
    const S: &str = "pbkdf2";
    let parsed = parse_phc(S, stored)?;
    // Checks the algorithm name and 1000 <= i, 10 <= l <= 64, l = the hash's length.
    let params = pbkdf2::Params::try_from(&parsed).map_err(|e| refuse(S, format!("parameters: {e}")))?;
    pbkdf2::Algorithm::new(parsed.algorithm.as_str()).map_err(|e| refuse(S, format!("algorithm: {e}")))?;
    if params.rounds() > PBKDF2_MAX_ROUNDS {
        return Err(refuse(S, format!("i={} above {PBKDF2_MAX_ROUNDS}", params.rounds())));
    }
    Ok(Foreign::Pbkdf2(parsed))
}

fn parse_sleepless(rest: &str) -> Result<Foreign<'_>, Refusal> {
    const S: &str = "sleepless-sha1";
    let Some((salt, digest)) = rest.split_once('$') else {
        return Err(refuse(S, "no `$` between salt and digest"));
    };
    if salt.len() != 40 || !salt.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(refuse(S, "the salt is not 40 hex digits"));
    }
    let Some(digest) = crate::secret::decode_hex::<20>(digest) else {
        return Err(refuse(S, "the digest is not 40 hex digits"));
    };
    Ok(Foreign::SleeplessSha1 { salt, digest })
}

/// What verifying a foreign hash costs, for [`super::HashCeiling`].
pub(super) enum Cost {
    Bcrypt(u32),
    /// Bytes of memory, and memory × p.
    Scrypt {
        memory: u64,
        work: u64,
    },
    Pbkdf2(u32),
    Cheap,
}

impl Foreign<'_> {
    /// The parameters that set what verifying costs.
    pub(super) fn cost(&self) -> Cost {
        match self {
            Foreign::Bcrypt(stored) => stored
                .parse::<bcrypt::HashParts>()
                .map_or(Cost::Bcrypt(u32::MAX), |p| Cost::Bcrypt(p.get_cost())),
            Foreign::Scrypt(parsed) => match scrypt::Params::try_from(parsed) {
                Ok(p) => {
                    let memory = 128 * u64::from(p.r()) * (1u64 << p.log_n());
                    Cost::Scrypt { memory, work: memory.saturating_mul(u64::from(p.p())) }
                }
                Err(_) => Cost::Scrypt { memory: u64::MAX, work: u64::MAX },
            },
            Foreign::Pbkdf2(parsed) => {
                Cost::Pbkdf2(pbkdf2::Params::try_from(parsed).map_or(u32::MAX, |p| p.rounds()))
            }
            Foreign::SleeplessSha1 { .. } => Cost::Cheap,
        }
    }

    /// The scheme's name, for logs.
    pub(super) fn scheme(&self) -> &'static str {
        match self {
            Foreign::Bcrypt(_) => "bcrypt",
            Foreign::Scrypt(_) => "scrypt",
            Foreign::Pbkdf2(_) => "pbkdf2",
            Foreign::SleeplessSha1 { .. } => "sleepless-sha1",
        }
    }

    /// Whether the scheme is fast enough that a wrong password would answer measurably
    /// sooner than an unknown user: the caller then also spends one Argon2 hash.
    pub(super) fn is_fast(&self) -> bool {
        matches!(self, Foreign::SleeplessSha1 { .. })
    }

    /// Whether `password` matches. Blocking and CPU-bound: run it on the hashing pool.
    pub(super) fn verify(&self, password: &[u8]) -> bool {
        match self {
            // Parsed already, so an error here is only the impossible; either way no match.
            Foreign::Bcrypt(stored) => bcrypt::verify(password, stored).unwrap_or(false),
            Foreign::Scrypt(parsed) => scrypt::Scrypt::new().verify_password(password, parsed).is_ok(),
            Foreign::Pbkdf2(parsed) => pbkdf2::Pbkdf2::default().verify_password(password, parsed).is_ok(),
            Foreign::SleeplessSha1 { salt, digest } => {
                let mut sha1 = Sha1::new();
                sha1.update(password);
                sha1.update(salt.as_bytes());
                sha1.finalize().as_slice().ct_eq(digest).into()
            }
        }
    }
}
