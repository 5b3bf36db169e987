//! Moving users in and out of hallpass: `hallpass export`, `hallpass import` and
//! `hallpass import-sleepless`. All three go through the [`Store`] trait
//! ([`Store::export_users`], [`Store::import_users`]), so they work on every backend, and an
//! export from one backend imported into another moves a deployment (SQLite to PostgreSQL,
//! say).
//!
//! The file format (JSON Lines, one object per line, UTF-8):
//!
//! ```text
//! {"hallpass_export": 1, "exported_at": "2026-11-23T10:00:00.000Z"}
//! {"scope": "default", "id": "0193...", "username": "alice", "email": "alice@example.com",
//!  "group": "default", "extra": {}, "active": true, "confirmation": null, "confirmed": false,
//!  "created_at": "...", "updated_at": "...", "last_login_at": null,
//!  "password_hash": "$argon2id$...", "providers": [{"provider": "github", "client_id": "42",
//!  "access_token": null, "access_token_expiry": null, "created_at": "...", "updated_at": "..."}]}
//! ```
//!
//! (each user on one line). A user with second factors has an `"mfa"` object besides:
//! `{"totp": {"secret": "<base32, opened>", "confirmed", "last_step", "created_at"},
//! "recovery_codes": [{"hash": "<64 hex digits>", "created_at"}], "passkeys": [{"id",
//! "name", "credential_id": "<base64url>", "credential": {...}, "counter",
//! "backup_eligible", "backup_state", "created_at", "last_used_at"}]}`; the export opens the
//! TOTP secret with its server's key and the import seals it with its own (refusing the
//! line when it has none). Timestamps are RFC 3339 in UTC with milliseconds. The header is
//! optional on import, but when present its version must be 1. What each command owns:
//!
//! - [`export`]: pages of 1000 users through `export_users`, written as above.
//! - [`import`]: reads the format back, validates every line with the core's typed
//!   constructors, and feeds batches of 1000 to `import_users`. A bad line is reported with
//!   its number and skipped; the rest goes in. Running it twice changes nothing the second
//!   time, since a user whose id exists is left as it is.
//! - [`sleepless`]: reads a sleepless-sessions MariaDB database and imports its users with
//!   their salted SHA-1 hashes (upgraded to Argon2id at each user's first good login).
//!
//! An export holds password hashes, provider tokens and authenticator-app secrets: the file is created readable
//! by its owner only.

pub mod export;
pub mod import;
pub mod sleepless;

use hallpass_core::Store;
use hallpass_core::store::{ExportedUser, ImportConflict, ImportOutcome, StoreError};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest as _, Sha256};
use std::io::IsTerminal as _;
use std::time::Duration;
use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};
use uuid::Uuid;

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u64 = 1;
/// Users per `export_users` page and per `import_users` batch.
pub const BATCH: usize = 1000;
/// Without a terminal, a progress line goes to stderr every this many batches.
pub const REPORT_EVERY_BATCHES: u64 = 10;

const TIMESTAMP: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// An instant as the format writes it: RFC 3339, UTC, milliseconds.
pub fn timestamp(t: OffsetDateTime) -> String {
    let utc = t.to_offset(UtcOffset::UTC);
    utc.format(TIMESTAMP).or_else(|_| utc.format(&Rfc3339)).unwrap_or_default()
}

/// Reads an RFC 3339 instant.
pub fn parse_timestamp(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// A UUIDv7 that is the same every time for the same inputs: `millis` (clamped to the 48
/// bits of the format) in the time bits, the first bytes of SHA-256(`scope` ":" `key`) in
/// the random bits, version 7 and the RFC 9562 variant set. Importers use it so a user
/// imported twice gets the same id, and the second import finds it and changes nothing.
pub fn deterministic_v7(millis: i64, scope: &str, key: &str) -> Uuid {
    let digest = Sha256::new()
        .chain_update(scope.as_bytes())
        .chain_update(b":")
        .chain_update(key.as_bytes())
        .finalize();
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    let millis = u64::try_from(millis).unwrap_or(0).min((1 << 48) - 1);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

/// Why a conflict happened, in words.
pub fn conflict_reason(c: ImportConflict) -> &'static str {
    match c {
        ImportConflict::Username => "its username belongs to another user of the scope",
        ImportConflict::Email => "its email belongs to another user of the scope",
        ImportConflict::Identity => "one of its provider links belongs to another user of the scope",
    }
}

/// Totals of an import run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Users inserted.
    pub inserted: u64,
    /// Users already there (same id in the scope), left as they were.
    pub existing: u64,
    /// Users not inserted because a username, email or provider link belongs to another.
    pub conflicts: u64,
    /// Lines or rows refused before reaching storage.
    pub invalid: u64,
}

impl Totals {
    /// Adds a batch's outcome.
    pub fn add(&mut self, outcome: &ImportOutcome) {
        self.inserted += outcome.inserted;
        self.existing += outcome.existing;
        self.conflicts += outcome.conflicts.len() as u64;
    }
}

impl std::fmt::Display for Totals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "inserted {}, existing {}, conflicts {}, invalid {}",
            self.inserted, self.existing, self.conflicts, self.invalid
        )
    }
}

/// Hands a batch to `import_users`, retrying a few times while storage is unavailable: a
/// batch is one transaction, so a retry cannot half-apply it.
pub async fn import_batch(store: &dyn Store, batch: &[ExportedUser]) -> anyhow::Result<ImportOutcome> {
    let mut wait = Duration::from_millis(500);
    let mut tries = 0;
    loop {
        match store.import_users(batch).await {
            Ok(outcome) => return Ok(outcome),
            Err(StoreError::Unavailable(why)) if tries < 4 => {
                tries += 1;
                tracing::warn!(%why, retry_in = ?wait, "storage unavailable during the import; retrying the batch");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(
                    "importing a batch failed (the batch was not applied; running the import again \
                     resumes it: users already imported are left as they are)",
                ));
            }
        }
    }
}

/// Progress on stderr: an `indicatif` bar on a terminal; elsewhere the bar is hidden and
/// the caller prints a line now and then ([`Progress::every_batches`]).
pub struct Progress {
    bar: ProgressBar,
    terminal: bool,
}

impl Progress {
    /// A bar over `total` bytes when known, else a spinner counting lines.
    pub fn new(total_bytes: Option<u64>) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = if terminal {
            let bar = match total_bytes {
                Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()).with_style(
                    ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta})")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                ),
                None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                    ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                ),
            };
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        } else {
            ProgressBar::hidden()
        };
        Self { bar, terminal }
    }

    /// Whether a bar is drawn (stderr is a terminal).
    pub fn is_terminal(&self) -> bool {
        self.terminal
    }

    /// Sets the position (bytes read) and the message.
    pub fn update(&self, position: Option<u64>, message: String) {
        if let Some(p) = position {
            self.bar.set_position(p);
        }
        self.bar.set_message(message);
    }

    /// Writes a line to stderr without tearing the bar.
    pub fn say(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    /// Whether to print a progress line after batch number `batches` (hidden bar only).
    pub fn every_batches(&self, batches: u64) -> bool {
        !self.terminal && batches > 0 && batches.is_multiple_of(REPORT_EVERY_BATCHES)
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_with_milliseconds() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_789).unwrap();
        assert_eq!(timestamp(t), "2025-11-24T16:00:00.123Z");
        let back = parse_timestamp("2025-11-24T17:00:00.123+01:00").unwrap();
        assert_eq!(timestamp(back), "2025-11-24T16:00:00.123Z");
        assert!(parse_timestamp("yesterday").is_none());
    }

    #[test]
    fn deterministic_ids_are_uuidv7_with_the_time_in_front() {
        let a = deterministic_v7(1_700_000_000_000, "shop", "42");
        assert_eq!(a, deterministic_v7(1_700_000_000_000, "shop", "42"));
        assert_ne!(a, deterministic_v7(1_700_000_000_000, "shop", "43"));
        assert_ne!(a, deterministic_v7(1_700_000_000_000, "blog", "42"));
        assert_eq!(a.get_version_num(), 7);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        let (secs, nanos) = a.get_timestamp().unwrap().to_unix();
        assert_eq!(secs * 1000 + u64::from(nanos) / 1_000_000, 1_700_000_000_000);
        // The random bits are SHA-256("shop:42"), version and variant bits overwritten.
        let digest = Sha256::digest(b"shop:42");
        let bytes = a.as_bytes();
        assert_eq!(bytes[0..6], 1_700_000_000_000u64.to_be_bytes()[2..8]);
        assert_eq!(bytes[6], 0x70 | (digest[0] & 0x0f));
        assert_eq!(bytes[7], digest[1]);
        assert_eq!(bytes[8], 0x80 | (digest[2] & 0x3f));
        assert_eq!(bytes[9..16], digest[3..10]);
        // Out-of-range times are clamped, not wrapped.
        assert_eq!(deterministic_v7(-5, "s", "k").get_timestamp().unwrap().to_unix().0, 0);
    }
}
