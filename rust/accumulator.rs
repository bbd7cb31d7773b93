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
//! # Files in flight: [`FileTally`]
//!
//! The rows of one attempt at one file are counted, as they are read, written and rejected,
//! into a [`FileTally`]: its own per-file view (what the file's manifest row records) and the
//! batch's *live* counters (what progress shows of files still loading). The attempt then
//! settles once: *loaded* moves its rows from live to the batch totals, *failed* moves them
//! to the totals as rolled back (read and rejected count, written does not), *retried* only
//! removes them (the next attempt reads the file again). Each move is one seqlocked event, so
//! a snapshot never shows a file's rows both live and in the totals, nor in neither. A tally
//! counts and settles even after [`Accumulator::cancel`]: it accounts for work the batch had
//! already started, so the final totals are always the sums of the files' own counts.
//!
//! # Clock
//!
//! See [`clock`]: `CLOCK_MONOTONIC`, the clock of Python's `time.monotonic()`.

use crossbeam_utils::CachePadded;
use std::cell::Cell;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

pub mod clock;
mod tally;

pub use clock::{calibrate_seconds_offset, now, now_coarse, to_seconds, Mono, NATIVE_MONOTONIC};
pub use tally::{FileTally, Settle, Settled};

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
    /// Rows of failed files that were read, not rejected, and rolled back.
    pub rows_rolled_back: u64,
    /// Rows of attempts still in flight (see [`FileTally`]).
    pub live: Rows,
    /// Rows handed to the sink, rolled-back attempts included (never decreases).
    pub rows_sent: u64,
    /// Attempts at files begun (retries included).
    pub file_attempts: u64,
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
/// The slot's latest activity time (not a counter: never summed). The counters an event
/// touches on the hot path and this one share the slot's first cache line with its sequence.
const LAST_ACTIVITY: usize = 8;
const ROLLED_BACK: usize = 9;
const LIVE_READ: usize = 10;
const LIVE_WRITTEN: usize = 11;
const LIVE_REJECTED: usize = 12;
const LIVE_BYTES: usize = 13;
const SENT: usize = 14;
const ATTEMPTS: usize = 15;
/// Number of values in a slot.
const COUNTERS: usize = 16;

/// Wrapping additions to a slot's values, applied as one event ([`Accumulator::apply`]); a
/// decrease is the wrapping negation (sums over slots stay exact modulo 2^64).
/// `LAST_ACTIVITY` must be 0.
type Delta = [u64; COUNTERS];

/// One seqlocked set of counters (see the module docs).
#[derive(Debug, Default)]
struct Slot {
    seq: AtomicU64,
    values: [AtomicU64; COUNTERS],
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
        self.apply_with(t, true, |v| {
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
        })
    }

    /// Add `d` as one event at `t`; refused (nothing counted) when `refuse_cancelled` and the
    /// batch is cancelled.
    fn apply(&self, d: &Delta, t: Mono, refuse_cancelled: bool) -> Result<(), Cancelled> {
        debug_assert_eq!(d[LAST_ACTIVITY], 0);
        self.apply_with(t, refuse_cancelled, |v| {
            for (counter, &add) in v.iter().zip(d) {
                bump(counter, add);
            }
        })
    }

    /// Claim a slot, let `add` change its values, record `t` as its latest activity, release.
    #[inline]
    fn apply_with(
        &self,
        t: Mono,
        refuse_cancelled: bool,
        add: impl FnOnce(&[AtomicU64; COUNTERS]),
    ) -> Result<(), Cancelled> {
        let claim = self.claim();
        if refuse_cancelled && self.cancelled.load(Ordering::SeqCst) {
            claim.abandon();
            return Err(self.cancelled_error());
        }
        let v = &claim.slot.values;
        add(v);
        if t.0 > v[LAST_ACTIVITY].load(Ordering::Relaxed) {
            v[LAST_ACTIVITY].store(t.0, Ordering::Release);
        }
        claim.release();
        Ok(())
    }

    /// Undo `files` files counted loaded with `rows_written` rows (an abandoned `--mode
    /// replace`: the files loaded into its shadow table become failed, their rows rolled
    /// back), as one unit for snapshots. Allowed after cancel (it corrects settled work).
    /// Refused (nothing changes) when the batch has counted fewer loaded files or written
    /// rows, so the counters never wrap.
    pub fn unload(&self, files: u64, rows_written: u64) -> Result<(), String> {
        let c = self.counters();
        if files > c.files_loaded || rows_written > c.rows_written {
            return Err(format!(
                "cannot unload {files} file(s) and {rows_written} row(s): the batch counted \
                 {} loaded file(s) and {} written row(s)",
                c.files_loaded, c.rows_written
            ));
        }
        // wrapping adds of the two's complement: the slots' sum is exact (see `counters`)
        let ok = self.apply_with(now_coarse(), false, |v| {
            bump(&v[LOADED], files.wrapping_neg());
            bump(&v[FAILED], files);
            bump(&v[ROWS_WRITTEN], rows_written.wrapping_neg());
            bump(&v[ROLLED_BACK], rows_written);
        });
        debug_assert!(ok.is_ok(), "apply_with refuses only when asked to");
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
    fn read_slot(slot: &Slot) -> Delta {
        let mut attempt = 0;
        loop {
            let seq = slot.seq.load(Ordering::Acquire);
            if seq & 1 == 0 {
                let mut out: Delta = [0; COUNTERS];
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
        let mut sum: Delta = [0; COUNTERS];
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
            rows_rolled_back: sum[ROLLED_BACK],
            live: Rows {
                read: sum[LIVE_READ],
                written: sum[LIVE_WRITTEN],
                rejected: sum[LIVE_REJECTED],
                bytes: sum[LIVE_BYTES],
            },
            rows_sent: sum[SENT],
            file_attempts: sum[ATTEMPTS],
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
mod tests;
