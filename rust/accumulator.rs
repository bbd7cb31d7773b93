//! Per-batch metrics updated from any thread without a lock: [`Accumulator`].
//!
//! # Consistency: per-slot seqlocks
//!
//! Every event is a *unit*: its file count and its rows must appear together in a snapshot.
//! The counters live in [`SLOTS`] cache-line-padded slots, each guarded by a sequence number
//! (a seqlock). A writer claims a slot with one compare-and-swap of its sequence from even to
//! odd, adds its numbers with plain loads and stores (it is the slot's only writer), and
//! releases it by storing the next even number. Each thread keeps using the slot it got last
//! (threads are spread over the slots round-robin), so the claim is uncontended; a writer that
//! finds its slot busy moves on to the next one and never waits for a particular writer while
//! another slot is free. One locked instruction per event instead of one per counter: that is
//! what keeps `add_file_event` close to the cost of a plain Python call.
//!
//! A reader sums the slots; for each it loads the sequence (retrying while it is odd), loads
//! the counters, and checks (after an acquire fence) that the sequence did not change, else it
//! retries that slot (spinning briefly, then yielding the CPU). An event lives wholly in one
//! slot, so a sum of consistent slot reads never shows an event's rows without its file count.
//!
//! Memory ordering: the claim is a SeqCst CAS followed by a release fence, so a reader that
//! sees any number a writer stored also sees (after its acquire fence) that writer's odd
//! sequence and retries; the release store of the even sequence publishes the numbers to the
//! next claimer and to readers that acquire it.
//!
//! # Cancellation
//!
//! [`Accumulator::cancel`] stores the flag (SeqCst) and then waits until every slot's sequence
//! is even. A writer loads the flag (SeqCst) after its claiming CAS (SeqCst), so either the
//! canceller sees that claim and waits for it, or the writer sees the flag and refuses: once
//! `cancel` returns, no event can be counted any more.
//!
//! # Clock
//!
//! Times are [`Mono`] values in nanoseconds. On 64-bit Linux they are `CLOCK_MONOTONIC` read
//! with `clock_gettime(2)`, the very clock of Python's `time.monotonic()`, so [`to_seconds`]
//! gives Python-comparable seconds directly. The hot path records last activity with
//! `CLOCK_MONOTONIC_COARSE` (the same clock at tick resolution, at most a few ms behind; a
//! third of the cost), which only makes idle time look longer by under one tick. Elsewhere
//! `std::time::Instant` since a process anchor is used and the bindings calibrate an offset
//! once against `time.monotonic()` ([`calibrate_seconds_offset`]).

use crossbeam_utils::CachePadded;
use std::cell::Cell;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

// ------------------------------------------------------------------------------------------
// Monotonic clock
// ------------------------------------------------------------------------------------------

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

// ------------------------------------------------------------------------------------------
// Timeouts
// ------------------------------------------------------------------------------------------

/// Operation and idle timeouts of a batch, and how often a watchdog checks it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchTimeout {
    pub operation: Duration,
    pub idle: Duration,
    pub watchdog_interval: Duration,
}

/// A timeout value that is not a finite positive number of seconds.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{name} must be a finite positive number of seconds, not {value}")]
pub struct InvalidTimeout {
    pub name: &'static str,
    pub value: f64,
}

fn seconds(name: &'static str, value: f64) -> Result<Duration, InvalidTimeout> {
    if value.is_finite() && value > 0.0 {
        Duration::try_from_secs_f64(value).map_err(|_| InvalidTimeout { name, value })
    } else {
        Err(InvalidTimeout { name, value })
    }
}

impl BatchTimeout {
    /// Build from seconds; every value must be finite and positive.
    pub fn from_secs(
        operation_timeout_s: f64,
        idle_timeout_s: f64,
        watchdog_interval_s: f64,
    ) -> Result<Self, InvalidTimeout> {
        Ok(Self {
            operation: seconds("operation_timeout_s", operation_timeout_s)?,
            idle: seconds("idle_timeout_s", idle_timeout_s)?,
            watchdog_interval: seconds("watchdog_interval_s", watchdog_interval_s)?,
        })
    }
}

impl Default for BatchTimeout {
    fn default() -> Self {
        Self {
            operation: Duration::from_secs(3600),
            idle: Duration::from_secs(1800),
            watchdog_interval: Duration::from_secs(1),
        }
    }
}

/// Which timeout a batch passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expiry {
    Operation,
    Idle,
}

impl Expiry {
    /// `"operation"` or `"idle"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Expiry::Operation => "operation",
            Expiry::Idle => "idle",
        }
    }

    /// The cancel reason the watchdog records.
    pub fn reason(self) -> &'static str {
        match self {
            Expiry::Operation => "operation timeout",
            Expiry::Idle => "idle timeout",
        }
    }
}

// ------------------------------------------------------------------------------------------
// Events and snapshots
// ------------------------------------------------------------------------------------------

/// Kinds of file event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileEvent {
    Started,
    Loaded,
    Skipped,
    Failed,
}

/// Row-level numbers carried by an event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rows {
    pub read: u64,
    pub written: u64,
    pub rejected: u64,
    pub bytes: u64,
}

/// The counters of a batch, read consistently.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub files_started: u64,
    pub files_loaded: u64,
    pub files_skipped: u64,
    pub files_failed: u64,
    pub rows_read: u64,
    pub rows_written: u64,
    pub rows_rejected: u64,
    pub bytes_read: u64,
}

/// How a batch was cancelled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cancellation {
    pub reason: String,
    pub expired: Option<Expiry>,
}

/// An immutable, internally consistent view of a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub counters: Counters,
    pub started_at: Mono,
    pub last_activity_at: Mono,
    pub taken_at: Mono,
    pub cancellation: Option<Cancellation>,
}

impl Snapshot {
    pub fn elapsed(&self) -> Duration {
        self.taken_at.since(self.started_at)
    }

    pub fn idle(&self) -> Duration {
        self.taken_at.since(self.last_activity_at)
    }
}

/// The batch was cancelled; the event was not counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("batch {batch_id} was cancelled ({reason}); the event was not counted")]
pub struct Cancelled {
    pub batch_id: String,
    pub reason: String,
}

// ------------------------------------------------------------------------------------------
// The accumulator
// ------------------------------------------------------------------------------------------

/// Number of counter slots per accumulator (each one cache line).
pub const SLOTS: usize = 16;

const STARTED: usize = 0;
const LOADED: usize = 1;
const SKIPPED: usize = 2;
const FAILED: usize = 3;
const ROWS_READ: usize = 4;
const ROWS_WRITTEN: usize = 5;
const ROWS_REJECTED: usize = 6;
const BYTES_READ: usize = 7;
const LAST_ACTIVITY: usize = 8;

/// One seqlocked set of counters (see the module docs).
#[derive(Debug, Default)]
struct Slot {
    seq: AtomicU64,
    values: [AtomicU64; 9],
}

/// Per-batch metrics: lock-free writers, consistent snapshots, cancellation and expiry.
#[derive(Debug)]
pub struct Accumulator {
    batch_id: String,
    timeout: BatchTimeout,
    started_at: Mono,
    slots: Box<[CachePadded<Slot>]>,
    touched: AtomicU64,
    cancelled: AtomicBool,
    cancellation: OnceLock<Cancellation>,
}

/// Reader retries spin this many times before yielding the CPU.
const SPINS_BEFORE_YIELD: u32 = 64;

#[inline]
fn backoff(attempt: &mut u32) {
    if *attempt < SPINS_BEFORE_YIELD {
        std::hint::spin_loop();
        *attempt += 1;
    } else {
        std::thread::yield_now();
    }
}

/// Add to a counter of a slot this thread has claimed (it is the only writer).
#[inline]
fn bump(counter: &AtomicU64, value: u64) {
    if value != 0 {
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(value),
            Ordering::Relaxed,
        );
    }
}

thread_local! {
    /// The slot this thread used last (`usize::MAX`: none yet).
    static SLOT_HINT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Spreads threads over the slots round-robin.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

#[inline]
fn slot_hint() -> usize {
    SLOT_HINT.with(|h| {
        let v = h.get();
        if v < SLOTS {
            v
        } else {
            let v = NEXT_SLOT.fetch_add(1, Ordering::Relaxed) % SLOTS;
            h.set(v);
            v
        }
    })
}

/// A claimed slot: released (sequence made even again) by [`Claim::release`].
struct Claim<'a> {
    slot: &'a Slot,
    seq: u64,
}

impl Claim<'_> {
    /// Publish the changes: the sequence moves to the next even number.
    #[inline]
    fn release(self) {
        self.slot.seq.store(self.seq + 2, Ordering::Release);
    }

    /// Release without changes: restore the sequence (readers need not retry).
    #[inline]
    fn abandon(self) {
        self.slot.seq.store(self.seq, Ordering::Release);
    }
}

impl Accumulator {
    /// A new batch that starts now.
    pub fn new(batch_id: impl Into<String>, timeout: BatchTimeout) -> Self {
        Self::started_at(batch_id, timeout, now())
    }

    /// A new batch that started at `t` (lets tests drive the clock).
    pub fn started_at(batch_id: impl Into<String>, timeout: BatchTimeout, t: Mono) -> Self {
        Self {
            batch_id: batch_id.into(),
            timeout,
            started_at: t,
            slots: (0..SLOTS)
                .map(|_| CachePadded::new(Slot::default()))
                .collect(),
            touched: AtomicU64::new(t.0),
            cancelled: AtomicBool::new(false),
            cancellation: OnceLock::new(),
        }
    }

    pub fn batch_id(&self) -> &str {
        &self.batch_id
    }

    pub fn timeout(&self) -> BatchTimeout {
        self.timeout
    }

    pub fn started(&self) -> Mono {
        self.started_at
    }

    /// The latest event or touch (the start if none).
    pub fn last_activity(&self) -> Mono {
        let latest = self
            .slots
            .iter()
            .map(|s| s.values[LAST_ACTIVITY].load(Ordering::Acquire))
            .max()
            .unwrap_or(0);
        Mono(latest.max(self.touched.load(Ordering::Acquire)))
    }

    /// Count one file event and its rows, as one unit for snapshots.
    #[inline]
    pub fn add_file_event(&self, kind: FileEvent, rows: Rows) -> Result<(), Cancelled> {
        self.write(Some(kind), rows, now_coarse())
    }

    /// Count rows within a file (no file count changes).
    #[inline]
    pub fn add_rows(&self, rows: Rows) -> Result<(), Cancelled> {
        self.write(None, rows, now_coarse())
    }

    /// Claim a slot: one CAS on the slot this thread used last, else on the next free one.
    #[inline]
    fn claim(&self) -> Claim<'_> {
        let mut i = slot_hint();
        let first = i;
        let mut attempt = 0;
        loop {
            let slot = &*self.slots[i];
            let seq = slot.seq.load(Ordering::Relaxed);
            if seq & 1 == 0
                && slot
                    .seq
                    .compare_exchange(seq, seq + 1, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
            {
                fence(Ordering::Release);
                if i != first {
                    SLOT_HINT.with(|h| h.set(i));
                }
                return Claim { slot, seq };
            }
            i = (i + 1) % SLOTS;
            if i == first {
                // Every slot is busy (more writers mid-event than slots): wait for one.
                backoff(&mut attempt);
            }
        }
    }

    /// [`Self::add_file_event`] / [`Self::add_rows`] at an explicit time.
    #[inline]
    pub fn write(&self, kind: Option<FileEvent>, rows: Rows, t: Mono) -> Result<(), Cancelled> {
        let claim = self.claim();
        if self.cancelled.load(Ordering::SeqCst) {
            claim.abandon();
            return Err(self.cancelled_error());
        }
        let v = &claim.slot.values;
        if let Some(kind) = kind {
            let i = match kind {
                FileEvent::Started => STARTED,
                FileEvent::Loaded => LOADED,
                FileEvent::Skipped => SKIPPED,
                FileEvent::Failed => FAILED,
            };
            bump(&v[i], 1);
        }
        bump(&v[ROWS_READ], rows.read);
        bump(&v[ROWS_WRITTEN], rows.written);
        bump(&v[ROWS_REJECTED], rows.rejected);
        bump(&v[BYTES_READ], rows.bytes);
        if t.0 > v[LAST_ACTIVITY].load(Ordering::Relaxed) {
            v[LAST_ACTIVITY].store(t.0, Ordering::Release);
        }
        claim.release();
        Ok(())
    }

    /// Record activity without counting anything (resets the idle clock). Allowed after cancel.
    pub fn touch(&self) {
        self.touch_at(now());
    }

    pub fn touch_at(&self, t: Mono) {
        self.touched.fetch_max(t.0, Ordering::Release);
    }

    fn cancelled_error(&self) -> Cancelled {
        Cancelled {
            batch_id: self.batch_id.clone(),
            reason: self
                .cancellation
                .get()
                .map_or_else(|| "cancelled".to_string(), |c| c.reason.clone()),
        }
    }

    /// One slot's counters, read consistently.
    fn read_slot(slot: &Slot) -> [u64; 8] {
        let mut attempt = 0;
        loop {
            let seq = slot.seq.load(Ordering::Acquire);
            if seq & 1 == 0 {
                let mut out = [0u64; 8];
                for (o, v) in out.iter_mut().zip(&slot.values) {
                    *o = v.load(Ordering::Relaxed);
                }
                fence(Ordering::Acquire);
                if slot.seq.load(Ordering::Relaxed) == seq {
                    return out;
                }
            }
            backoff(&mut attempt);
        }
    }

    /// The counters, consistently: never an event's rows without its file count.
    pub fn counters(&self) -> Counters {
        let mut sum = [0u64; 8];
        for slot in self.slots.iter() {
            for (s, v) in sum.iter_mut().zip(Self::read_slot(slot)) {
                *s = s.wrapping_add(v);
            }
        }
        Counters {
            files_started: sum[STARTED],
            files_loaded: sum[LOADED],
            files_skipped: sum[SKIPPED],
            files_failed: sum[FAILED],
            rows_read: sum[ROWS_READ],
            rows_written: sum[ROWS_WRITTEN],
            rows_rejected: sum[ROWS_REJECTED],
            bytes_read: sum[BYTES_READ],
        }
    }

    /// A consistent snapshot taken now.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot_at(now())
    }

    pub fn snapshot_at(&self, t: Mono) -> Snapshot {
        let counters = self.counters();
        Snapshot {
            counters,
            started_at: self.started_at,
            last_activity_at: self.last_activity(),
            taken_at: t,
            cancellation: self.cancellation(),
        }
    }

    /// Cancel the batch. Returns true if this call cancelled it. When it returns, no event
    /// can be counted any more.
    pub fn cancel(&self, reason: impl Into<String>) -> bool {
        self.cancel_with(Cancellation {
            reason: reason.into(),
            expired: None,
        })
    }

    /// Cancel because `expiry` passed (reason "operation timeout" / "idle timeout").
    pub fn cancel_expired(&self, expiry: Expiry) -> bool {
        self.cancel_with(Cancellation {
            reason: expiry.reason().to_string(),
            expired: Some(expiry),
        })
    }

    fn cancel_with(&self, c: Cancellation) -> bool {
        let first = self.cancellation.set(c).is_ok();
        self.cancelled.store(true, Ordering::SeqCst);
        // Wait for events that claimed a slot before the flag was visible (a few stores each).
        for slot in self.slots.iter() {
            let mut attempt = 0;
            while slot.seq.load(Ordering::SeqCst) & 1 == 1 {
                backoff(&mut attempt);
            }
        }
        first
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    pub fn cancellation(&self) -> Option<Cancellation> {
        if self.is_cancelled() {
            self.cancellation.get().cloned()
        } else {
            None
        }
    }

    /// Which timeout the batch has passed at `t`, if any (the operation timeout wins).
    pub fn expired_at(&self, t: Mono) -> Option<Expiry> {
        if t.since(self.started_at) >= self.timeout.operation {
            Some(Expiry::Operation)
        } else if t.since(self.last_activity()) >= self.timeout.idle {
            Some(Expiry::Idle)
        } else {
            None
        }
    }

    pub fn is_expired(&self) -> Option<Expiry> {
        self.expired_at(now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};
    use std::thread;

    fn acc_at(t: u64) -> Accumulator {
        let timeout = BatchTimeout::from_secs(10.0, 2.0, 0.5).unwrap();
        Accumulator::started_at("b1", timeout, Mono(t))
    }

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn counts_events_and_rows() {
        let acc = acc_at(0);
        let rows = Rows {
            read: 3,
            written: 2,
            rejected: 1,
            bytes: 100,
        };
        acc.write(Some(FileEvent::Started), Rows::default(), Mono(5))
            .unwrap();
        acc.write(Some(FileEvent::Loaded), rows, Mono(6)).unwrap();
        acc.write(Some(FileEvent::Skipped), Rows::default(), Mono(7))
            .unwrap();
        acc.write(
            Some(FileEvent::Failed),
            Rows {
                read: 1,
                ..Rows::default()
            },
            Mono(8),
        )
        .unwrap();
        acc.write(
            None,
            Rows {
                bytes: 7,
                ..Rows::default()
            },
            Mono(9),
        )
        .unwrap();
        let s = acc.snapshot_at(Mono(10));
        assert_eq!(
            s.counters,
            Counters {
                files_started: 1,
                files_loaded: 1,
                files_skipped: 1,
                files_failed: 1,
                rows_read: 4,
                rows_written: 2,
                rows_rejected: 1,
                bytes_read: 107,
            }
        );
        assert_eq!(s.last_activity_at, Mono(9));
        assert_eq!(s.elapsed(), Duration::from_nanos(10));
        assert_eq!(s.idle(), Duration::from_nanos(1));
        assert_eq!(s.cancellation, None);
    }

    #[test]
    fn last_activity_never_goes_back() {
        let acc = acc_at(0);
        acc.touch_at(Mono(50));
        acc.write(None, Rows::default(), Mono(20)).unwrap();
        assert_eq!(acc.last_activity(), Mono(50));
    }

    #[test]
    fn cancel_refuses_later_events_and_keeps_first_reason() {
        let acc = acc_at(0);
        acc.add_file_event(FileEvent::Started, Rows::default())
            .unwrap();
        assert!(acc.cancel("user"));
        assert!(!acc.cancel("again"));
        assert!(!acc.cancel_expired(Expiry::Idle));
        let err = acc.add_file_event(
            FileEvent::Loaded,
            Rows {
                read: 1,
                ..Rows::default()
            },
        );
        assert_eq!(
            err,
            Err(Cancelled {
                batch_id: "b1".into(),
                reason: "user".into()
            })
        );
        assert!(acc
            .add_rows(Rows {
                read: 1,
                ..Rows::default()
            })
            .is_err());
        let s = acc.snapshot();
        assert_eq!(s.counters.files_loaded, 0);
        assert_eq!(s.counters.rows_read, 0);
        assert_eq!(s.counters.files_started, 1);
        assert_eq!(
            s.cancellation,
            Some(Cancellation {
                reason: "user".into(),
                expired: None
            })
        );
    }

    #[test]
    fn cancel_expired_records_the_kind() {
        let acc = acc_at(0);
        assert!(acc.cancel_expired(Expiry::Operation));
        let c = acc.cancellation().unwrap();
        assert_eq!(c.reason, "operation timeout");
        assert_eq!(c.expired, Some(Expiry::Operation));
    }

    #[test]
    fn expiry_logic() {
        let acc = acc_at(100 * SEC);
        assert_eq!(acc.expired_at(Mono(100 * SEC)), None);
        assert_eq!(acc.expired_at(Mono(101 * SEC)), None);
        // idle: 2 s without activity
        assert_eq!(acc.expired_at(Mono(102 * SEC)), Some(Expiry::Idle));
        acc.touch_at(Mono(102 * SEC));
        assert_eq!(acc.expired_at(Mono(103 * SEC)), None);
        acc.write(None, Rows::default(), Mono(109 * SEC)).unwrap();
        assert_eq!(acc.expired_at(Mono(109 * SEC + 1)), None);
        // operation: 10 s in total, wins over idle
        assert_eq!(acc.expired_at(Mono(110 * SEC)), Some(Expiry::Operation));
        assert_eq!(acc.expired_at(Mono(200 * SEC)), Some(Expiry::Operation));
        // a clock reading before the start never expires anything
        assert_eq!(acc.expired_at(Mono(0)), None);
    }

    #[test]
    fn timeouts_are_validated() {
        assert!(BatchTimeout::from_secs(1.0, 1.0, 1.0).is_ok());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e300] {
            let err = BatchTimeout::from_secs(1.0, bad, 1.0).unwrap_err();
            assert_eq!(err.name, "idle_timeout_s");
        }
        assert_eq!(BatchTimeout::default().operation, Duration::from_secs(3600));
        assert_eq!(BatchTimeout::default().idle, Duration::from_secs(1800));
    }

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

    /// Writers add (1 file, 3 rows read, 2 written, 1 rejected, 5 bytes) per event, so every
    /// consistent snapshot has rows_read == 3 * files etc.; readers check that while 4 writers run.
    #[test]
    fn snapshots_are_consistent_under_concurrency() {
        const WRITERS: u64 = 4;
        const EVENTS: u64 = 20_000;
        let acc = Arc::new(acc_at(0));
        let barrier = Arc::new(Barrier::new(WRITERS as usize + 2));
        let done = Arc::new(AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let (acc, barrier) = (acc.clone(), barrier.clone());
            writers.push(thread::spawn(move || {
                barrier.wait();
                let kind = if w % 2 == 0 {
                    FileEvent::Loaded
                } else {
                    FileEvent::Failed
                };
                for _ in 0..EVENTS {
                    let rows = Rows {
                        read: 3,
                        written: 2,
                        rejected: 1,
                        bytes: 5,
                    };
                    acc.add_file_event(kind, rows).unwrap();
                }
            }));
        }
        let mut readers = Vec::new();
        for _ in 0..2 {
            let (acc, barrier, done) = (acc.clone(), barrier.clone(), done.clone());
            readers.push(thread::spawn(move || {
                barrier.wait();
                let mut seen = 0u64;
                let mut last = 0u64;
                while !done.load(Ordering::Acquire) {
                    let c = acc.counters();
                    let files = c.files_loaded + c.files_failed;
                    assert_eq!(c.rows_read, 3 * files, "{c:?}");
                    assert_eq!(c.rows_written, 2 * files, "{c:?}");
                    assert_eq!(c.rows_rejected, files, "{c:?}");
                    assert_eq!(c.bytes_read, 5 * files, "{c:?}");
                    assert!(files >= last, "counters went back");
                    last = files;
                    seen += 1;
                }
                seen
            }));
        }
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Release);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
        let c = acc.counters();
        assert_eq!(c.files_loaded + c.files_failed, WRITERS * EVENTS);
        assert_eq!(c.files_loaded, WRITERS / 2 * EVENTS);
        assert_eq!(c.rows_read, 3 * WRITERS * EVENTS);
        assert_eq!(c.bytes_read, 5 * WRITERS * EVENTS);
    }

    /// More writers than slots: claims collide and writers move to other slots; totals stay
    /// exact and every snapshot stays consistent.
    #[test]
    fn more_writers_than_slots() {
        let writers = SLOTS as u64 * 2 + 3;
        const EVENTS: u64 = 2_000;
        let acc = Arc::new(acc_at(0));
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (acc, done) = (acc.clone(), done.clone());
            thread::spawn(move || {
                while !done.load(Ordering::Acquire) {
                    let c = acc.counters();
                    assert_eq!(c.rows_read, 3 * c.files_started, "{c:?}");
                    assert_eq!(c.bytes_read, 7 * c.files_started, "{c:?}");
                }
            })
        };
        let handles: Vec<_> = (0..writers)
            .map(|_| {
                let acc = acc.clone();
                thread::spawn(move || {
                    for _ in 0..EVENTS {
                        let rows = Rows {
                            read: 3,
                            bytes: 7,
                            ..Rows::default()
                        };
                        acc.add_file_event(FileEvent::Started, rows).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        done.store(true, Ordering::Release);
        reader.join().unwrap();
        let c = acc.counters();
        assert_eq!(c.files_started, writers * EVENTS);
        assert_eq!(c.rows_read, 3 * writers * EVENTS);
    }

    /// Once cancel() returns, counters never change again, even with writers racing it.
    #[test]
    fn nothing_counted_after_cancel_returns() {
        let acc = Arc::new(acc_at(0));
        let barrier = Arc::new(Barrier::new(5));
        let mut writers = Vec::new();
        for _ in 0..4 {
            let (acc, barrier) = (acc.clone(), barrier.clone());
            writers.push(thread::spawn(move || {
                barrier.wait();
                let mut accepted = 0u64;
                while acc
                    .add_file_event(
                        FileEvent::Loaded,
                        Rows {
                            read: 1,
                            ..Rows::default()
                        },
                    )
                    .is_ok()
                {
                    accepted += 1;
                }
                accepted
            }));
        }
        barrier.wait();
        while acc.counters().files_loaded < 1000 {
            thread::yield_now();
        }
        assert!(acc.cancel("stop"));
        let at_cancel = acc.counters();
        let accepted: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
        assert_eq!(acc.counters(), at_cancel);
        assert_eq!(at_cancel.files_loaded, accepted);
        assert_eq!(at_cancel.rows_read, accepted);
    }
}
