//! The time seam: the service reads "now" only through [`Clock`], so expiry is tested by
//! moving a [`FakeClock`] instead of sleeping.

use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant, in UTC.
    fn now(&self) -> OffsetDateTime;

    /// The current instant as milliseconds since the Unix epoch: `to_unix_ms(self.now())`,
    /// which a clock may answer more cheaply (the hot path compares with it).
    fn unix_ms(&self) -> i64 {
        to_unix_ms(self.now())
    }
}

/// The real wall clock, truncated to milliseconds (the precision storage keeps).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        // Turning the system time into a calendar date costs more than reading it, and a
        // busy thread asks many times within one millisecond (every session check does):
        // each thread keeps the last millisecond it converted.
        thread_local! {
            static LAST: std::cell::Cell<(i64, OffsetDateTime)> =
                const { std::cell::Cell::new((i64::MIN, OffsetDateTime::UNIX_EPOCH)) };
        }
        let ms = self.unix_ms();
        LAST.with(|last| {
            let (at, t) = last.get();
            if at == ms {
                t
            } else {
                let t = from_unix_ms(ms);
                last.set((ms, t));
                t
            }
        })
    }

    fn unix_ms(&self) -> i64 {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
        }
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
    // Whole seconds and the millisecond field: no 128-bit division (this runs on every
    // stored or compared instant). Floors like the seconds do.
    t.unix_timestamp().saturating_mul(1000).saturating_add(i64::from(t.millisecond()))
}

/// The instant `ms` milliseconds after the Unix epoch (clamped to the representable range).
pub fn from_unix_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.replace_millisecond(ms.rem_euclid(1000) as u16).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_round_trip_and_floor() {
        for ms in [0, 1, 999, 1_000, 1_796_557_814_115, -1, -999, -1_000, -1_001] {
            assert_eq!(to_unix_ms(from_unix_ms(ms)), ms, "{ms}");
        }
        let t = time::macros::datetime!(2026-12-06 11:50:14.115_999_999 UTC);
        assert_eq!(to_unix_ms(t), 1_796_557_814_115);
        assert_eq!(truncate_ms(t), time::macros::datetime!(2026-12-06 11:50:14.115 UTC));
        // Out of range: the epoch, as before.
        assert_eq!(from_unix_ms(i64::MAX), OffsetDateTime::UNIX_EPOCH);
    }

    #[test]
    fn the_system_clock_reads_the_wall_clock_in_whole_milliseconds() {
        let before = truncate_ms(OffsetDateTime::now_utc());
        let (a, b) = (SystemClock.now(), SystemClock.now());
        let after = OffsetDateTime::now_utc();
        assert!(before <= a && a <= b && b <= after, "{before} {a} {b} {after}");
        assert_eq!(a.nanosecond() % 1_000_000, 0);
        assert!((SystemClock.unix_ms() - to_unix_ms(b)).abs() < 1_000);
    }
}
