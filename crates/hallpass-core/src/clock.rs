//! The time seam: the service reads "now" only through [`Clock`], so expiry is tested by
//! moving a [`FakeClock`] instead of sleeping.

use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The real wall clock, truncated to milliseconds (the precision storage keeps).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        truncate_ms(OffsetDateTime::now_utc())
    }
}

/// A clock that only moves when told to. For tests.
#[derive(Debug)]
pub struct FakeClock(Mutex<OffsetDateTime>);

impl FakeClock {
    /// A fake clock standing at `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        Self(Mutex::new(truncate_ms(start)))
    }

    /// A fake clock at a fixed, arbitrary instant (2030-01-01T00:00:00Z).
    pub fn fixed() -> Self {
        Self::new(time::macros::datetime!(2030-01-01 00:00 UTC))
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += by;
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = truncate_ms(to);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Cuts an instant down to whole milliseconds, the resolution every backend stores.
pub fn truncate_ms(t: OffsetDateTime) -> OffsetDateTime {
    from_unix_ms(to_unix_ms(t))
}

/// Milliseconds since the Unix epoch.
pub fn to_unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The instant `ms` milliseconds after the Unix epoch (clamped to the representable range).
pub fn from_unix_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
