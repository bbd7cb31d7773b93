//! [`FileTally`]: the rows of one attempt at one file, live in the batch until it settles.
//!
//! See the accumulator's module docs ("Files in flight").

use super::{
    now_coarse, Accumulator, Delta, Rows, ATTEMPTS, BYTES_READ, COUNTERS, FAILED, LIVE_BYTES,
    LIVE_READ, LIVE_REJECTED, LIVE_WRITTEN, LOADED, ROLLED_BACK, ROWS_READ, ROWS_REJECTED,
    ROWS_WRITTEN, SENT,
};
use std::sync::{Arc, Mutex, MutexGuard};

/// How an attempt at a file ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Settle {
    /// Committed: its rows join the batch totals (one file loaded).
    Loaded,
    /// Rolled back for good: read and rejected rows join the totals, the rest as rolled back
    /// (one file failed; nothing written).
    Failed,
    /// Rolled back to be attempted again: its rows leave the batch (no file event).
    Retried,
}

/// The tally was settled already (it settles once).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this attempt was already settled ({0:?})")]
pub struct Settled(pub Settle);

#[derive(Debug, Default)]
struct State {
    rows: Rows,
    settled: Option<Settle>,
}

/// The counts of one attempt at one file: its own view and the batch's live counters.
///
/// The reader thread adds rows read and rejected, the writer thread rows written and rows
/// the sink rejected; a small lock orders them with [`FileTally::settle`] (one uncontended
/// lock per record batch), so nothing is added to the batch after its attempt settled.
#[derive(Debug)]
pub struct FileTally {
    acc: Arc<Accumulator>,
    state: Mutex<State>,
}

impl FileTally {
    /// Begin an attempt (counted in `file_attempts`). Allowed after cancel: see the module
    /// docs of the accumulator.
    pub fn begin(acc: Arc<Accumulator>) -> Self {
        let mut d: Delta = [0; COUNTERS];
        d[ATTEMPTS] = 1;
        let _ = acc.apply(&d, now_coarse(), false);
        Self {
            acc,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // the lock only guards plain additions: a poisoned one holds consistent numbers
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count rows of this attempt. Returns false (nothing counted) once it has settled.
    pub fn add(&self, rows: Rows) -> bool {
        let mut st = self.state();
        if st.settled.is_some() {
            return false;
        }
        let r = &mut st.rows;
        r.read = r.read.wrapping_add(rows.read);
        r.written = r.written.wrapping_add(rows.written);
        r.rejected = r.rejected.wrapping_add(rows.rejected);
        r.bytes = r.bytes.wrapping_add(rows.bytes);
        let mut d: Delta = [0; COUNTERS];
        d[LIVE_READ] = rows.read;
        d[LIVE_WRITTEN] = rows.written;
        d[LIVE_REJECTED] = rows.rejected;
        d[LIVE_BYTES] = rows.bytes;
        d[SENT] = rows.written;
        let _ = self.acc.apply(&d, now_coarse(), false);
        true
    }

    /// What this attempt has counted so far.
    pub fn rows(&self) -> Rows {
        self.state().rows
    }

    /// How it settled, if it has.
    pub fn settled(&self) -> Option<Settle> {
        self.state().settled
    }

    /// End the attempt: move its rows out of the live counters as `how` says, as one event.
    pub fn settle(&self, how: Settle) -> Result<Rows, Settled> {
        let mut st = self.state();
        if let Some(done) = st.settled {
            return Err(Settled(done));
        }
        st.settled = Some(how);
        let r = st.rows;
        self.acc
            .apply(&settle_delta(r, how), now_coarse(), false)
            .ok();
        Ok(r)
    }
}

impl Drop for FileTally {
    /// An attempt dropped unsettled leaves the live counters (as if retried).
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if st.settled.is_none() {
            st.settled = Some(Settle::Retried);
            let d = settle_delta(st.rows, Settle::Retried);
            self.acc.apply(&d, now_coarse(), false).ok();
        }
    }
}

fn settle_delta(r: Rows, how: Settle) -> Delta {
    let mut d: Delta = [0; COUNTERS];
    d[LIVE_READ] = r.read.wrapping_neg();
    d[LIVE_WRITTEN] = r.written.wrapping_neg();
    d[LIVE_REJECTED] = r.rejected.wrapping_neg();
    d[LIVE_BYTES] = r.bytes.wrapping_neg();
    match how {
        Settle::Loaded => {
            d[LOADED] = 1;
            d[ROWS_READ] = r.read;
            d[ROWS_WRITTEN] = r.written;
            d[ROWS_REJECTED] = r.rejected;
            d[BYTES_READ] = r.bytes;
        }
        Settle::Failed => {
            d[FAILED] = 1;
            d[ROWS_READ] = r.read;
            d[ROWS_REJECTED] = r.rejected;
            d[ROLLED_BACK] = r.read.saturating_sub(r.rejected);
            d[BYTES_READ] = r.bytes;
        }
        Settle::Retried => {}
    }
    d
}
