//! The monotonic clock of the accumulator and the watchdog.
//!
//! Times are [`Mono`] values in nanoseconds. On 64-bit Linux they are `CLOCK_MONOTONIC` read
//! with `clock_gettime(2)`, the very clock of Python's `time.monotonic()`, so [`to_seconds`]
//! gives Python-comparable seconds directly. The hot path records last activity with
//! `CLOCK_MONOTONIC_COARSE` (the same clock at tick resolution, at most a few ms behind; a
//! third of the cost), which only makes idle time look longer by under one tick. Elsewhere
//! `std::time::Instant` since a process anchor is used and the bindings calibrate an offset
//! once against `time.monotonic()` ([`calibrate_seconds_offset`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A point on the monotonic clock, in nanoseconds (see the module docs for its epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mono(pub u64);

impl Mono {
    /// Nanoseconds from `earlier` to `self` (0 if `earlier` is later).
    pub fn since(self, earlier: Mono) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self` moved forward by `d` (saturating).
    pub fn plus(self, d: Duration) -> Mono {
        Mono(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod sys {
    //! `clock_gettime(2)` for `CLOCK_MONOTONIC` (the clock of Python's `time.monotonic()`)
    //! and `CLOCK_MONOTONIC_COARSE` (the same clock at tick resolution, a few times cheaper:
    //! no TSC read). Declared here rather than through a crate to keep the dependency set.

    /// `struct timespec` of 64-bit Linux: `time_t` and `long` are both 64-bit.
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }

    extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }

    pub const MONOTONIC: i32 = 1;
    pub const MONOTONIC_COARSE: i32 = 6;

    /// Nanoseconds on `clock`, or None if the call failed.
    #[inline]
    pub fn read(clock: i32) -> Option<u64> {
        let mut ts = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `clock_gettime` (glibc/musl, always linked) only writes one `struct timespec`
        // through `tp`; `&mut ts` is a valid, aligned, exclusive pointer to a value with that
        // exact layout on 64-bit Linux, living for the whole call. Bad clock ids give -1
        // (EINVAL), which we turn into None; nothing else is touched.
        let rc = unsafe { clock_gettime(clock, &mut ts) };
        let sec = u64::try_from(ts.tv_sec).ok()?;
        let nsec = u64::try_from(ts.tv_nsec).ok()?;
        (rc == 0).then(|| sec.saturating_mul(1_000_000_000).saturating_add(nsec))
    }
}

/// True when [`Mono`] values are nanoseconds of `CLOCK_MONOTONIC` itself, so [`to_seconds`]
/// equals Python's `time.monotonic()` without calibration.
pub const NATIVE_MONOTONIC: bool = cfg!(all(target_os = "linux", target_pointer_width = "64"));

fn instant_now() -> Mono {
    static ANCHOR: OnceLock<Instant> = OnceLock::new();
    let nanos = Instant::now()
        .saturating_duration_since(*ANCHOR.get_or_init(Instant::now))
        .as_nanos();
    Mono(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// The current point on the monotonic clock.
#[inline]
pub fn now() -> Mono {
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    if let Some(t) = sys::read(sys::MONOTONIC) {
        return Mono(t);
    }
    // Not Linux (or, in theory, a failing CLOCK_MONOTONIC): `Instant` since a process anchor.
    instant_now()
}

/// The current point on the monotonic clock at tick resolution (a few ms at most behind
/// [`now`]); what the hot path records as last activity.
#[inline]
pub fn now_coarse() -> Mono {
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    if let Some(t) = sys::read(sys::MONOTONIC_COARSE) {
        return Mono(t);
    }
    now()
}

/// Offset (seconds, as f64 bits) added by [`to_seconds`]; 0 until calibrated.
static SECONDS_OFFSET: AtomicU64 = AtomicU64::new(0);

/// Seconds on the calibrated monotonic clock (Python's `time.monotonic()` once calibrated).
pub fn to_seconds(t: Mono) -> f64 {
    let seconds = t.0 as f64 / 1e9;
    if NATIVE_MONOTONIC {
        seconds
    } else {
        f64::from_bits(SECONDS_OFFSET.load(Ordering::Relaxed)) + seconds
    }
}

/// Calibrate [`to_seconds`] against an external reading of the same clock.
///
/// `read_external` returns the current time in seconds on `CLOCK_MONOTONIC` (e.g. Python's
/// `time.monotonic()`). It is sampled a few times between two readings of [`now`]; the sample
/// with the narrowest window gives the offset. Returns the width of that window (the bound on
/// the error). A no-op returning zero when [`NATIVE_MONOTONIC`] (nothing to calibrate).
pub fn calibrate_seconds_offset(read_external: impl FnMut() -> f64) -> Duration {
    if NATIVE_MONOTONIC {
        return Duration::ZERO;
    }
    calibrate_instant_offset(read_external)
}

fn calibrate_instant_offset(mut read_external: impl FnMut() -> f64) -> Duration {
    let mut best: Option<(u64, f64)> = None;
    for _ in 0..5 {
        let before = instant_now();
        let external = read_external();
        let after = instant_now();
        let width = after.0.saturating_sub(before.0);
        let mid = before.0 as f64 / 1e9 + width as f64 / 2e9;
        match best {
            Some((w, _)) if w <= width => {}
            _ => best = Some((width, external - mid)),
        }
    }
    let (width, offset) = best.unwrap_or((0, 0.0));
    SECONDS_OFFSET.store(offset.to_bits(), Ordering::Relaxed);
    Duration::from_nanos(width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_on_the_monotonic_clock() {
        if NATIVE_MONOTONIC {
            assert_eq!(calibrate_seconds_offset(|| 12345.0), Duration::ZERO);
            let t = now();
            assert_eq!(to_seconds(t), t.0 as f64 / 1e9);
            // the coarse clock is the same clock, at most a tick behind
            let coarse = now_coarse();
            let precise = now();
            assert!(coarse <= precise && precise.since(coarse) < Duration::from_millis(100));
        }
    }

    /// The fallback for other platforms: an offset calibrated against an external reading.
    #[test]
    fn instant_calibration_offsets_seconds() {
        let raw = |t: Mono| t.0 as f64 / 1e9;
        let width = calibrate_instant_offset(|| 1000.0 + raw(instant_now()));
        assert!(width < Duration::from_millis(100));
        let offset = f64::from_bits(SECONDS_OFFSET.load(Ordering::Relaxed));
        assert!((offset - 1000.0).abs() < 0.1, "{offset}");
        SECONDS_OFFSET.store(0f64.to_bits(), Ordering::Relaxed);
    }
}
