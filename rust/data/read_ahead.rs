//! One record batch read ahead, on a thread of its own.
//!
//! A reader's caller validates a batch (or hands it to a writer) between two `next_batch`
//! calls; without read-ahead, parsing and validation take turns on the two cores. [`ReadAhead`]
//! wraps a [`BatchSource`] so that, once a first batch came back and the input is not at its
//! end, a `tallyclerk-read` thread reads batch n+1 while the caller works on batch n: at
//! most **one batch ahead** (a rendezvous channel: the thread hands a batch over only when the
//! caller asks for it, and only then starts the next read), so memory grows by one batch.
//!
//! What the caller sees does not change:
//! * the same batches, errors and end, in the same order: after an error or the end the thread
//!   hands the reader back and returns, and later calls go to the reader itself (a finished
//!   reader answers `None`, as it does without read-ahead);
//! * `bytes_read` and `records_read` are those of the batches handed over so far, not of the
//!   batch read ahead (the loader's per-batch byte counts stay exact);
//! * `set_batch_rows` lags by the batch already read ahead, deterministically: batch k+1 is read
//!   with the size set when batch k was asked for (the caller sends it with the request), so
//!   the same calls give the same batches whatever the threads' timing;
//! * a file that fits in one batch (the reader is at its end after it) never starts a thread:
//!   many small files cost no thread each (issue 16.4);
//! * dropping the wrapper while a batch is read ahead does not wait: the thread's hand-over
//!   fails, it drops the reader (closing the file) and exits when its read returns, as a
//!   reader thread stuck in a silent pipe does in the loader;
//! * a panic on the thread (a bug) comes back as an error naming the file, not as a lost
//!   thread or a panic across the FFI boundary; if a thread cannot be started, reading goes
//!   on without one.

use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};
use std::thread::JoinHandle;

use super::{CsvReader, DataError, JsonlReader, RecordBatch};

/// A reader of record batches that [`ReadAhead`] can run on another thread.
pub trait BatchSource: Send + 'static {
    fn next_batch(&mut self) -> Result<Option<RecordBatch>, DataError>;
    fn bytes_read(&self) -> u64;
    fn records_read(&self) -> u64;
    fn batch_rows(&self) -> usize;
    fn set_batch_rows(&mut self, rows: usize);
    /// The input is known to be used up (the next batch is `None`): nothing to read ahead.
    fn at_end(&self) -> bool;
    /// The file, for the message of an error that is not the reader's own.
    fn path(&self) -> &str;
}

impl BatchSource for CsvReader {
    fn next_batch(&mut self) -> Result<Option<RecordBatch>, DataError> {
        CsvReader::next_batch(self)
    }
    fn bytes_read(&self) -> u64 {
        CsvReader::bytes_read(self)
    }
    fn records_read(&self) -> u64 {
        CsvReader::records_read(self)
    }
    fn batch_rows(&self) -> usize {
        CsvReader::batch_rows(self)
    }
    fn set_batch_rows(&mut self, rows: usize) {
        CsvReader::set_batch_rows(self, rows);
    }
    fn at_end(&self) -> bool {
        self.is_finished()
    }
    fn path(&self) -> &str {
        CsvReader::path(self)
    }
}

impl BatchSource for JsonlReader {
    fn next_batch(&mut self) -> Result<Option<RecordBatch>, DataError> {
        JsonlReader::next_batch(self)
    }
    fn bytes_read(&self) -> u64 {
        JsonlReader::bytes_read(self)
    }
    fn records_read(&self) -> u64 {
        JsonlReader::records_read(self)
    }
    fn batch_rows(&self) -> usize {
        JsonlReader::batch_rows(self)
    }
    fn set_batch_rows(&mut self, rows: usize) {
        JsonlReader::set_batch_rows(self, rows);
    }
    fn at_end(&self) -> bool {
        self.is_finished()
    }
    fn path(&self) -> &str {
        JsonlReader::path(self)
    }
}

/// What the thread hands over: a batch (or the end, or an error) and the counts after it.
struct Item {
    result: Result<Option<RecordBatch>, DataError>,
    bytes: u64,
    records: u64,
}

enum State<R> {
    /// Reading on the caller's thread (before the first batch, after the end or an error).
    Here(R),
    /// The thread owns the reader; it returns it after handing over the end or an error
    /// (`None` only once nobody listens any more: the wrapper is gone, nobody joins it).
    Ahead {
        items: Receiver<Item>,
        sizes: Sender<usize>,
        thread: JoinHandle<Option<R>>,
    },
    /// The thread panicked: the reader went with it.
    Lost,
}

/// A [`BatchSource`] read one batch ahead (see the module documentation).
pub struct ReadAhead<R: BatchSource> {
    state: State<R>,
    path: String,
    rows: usize,
    bytes: u64,
    records: u64,
    enabled: bool,
}

impl<R: BatchSource> ReadAhead<R> {
    /// `enabled` false: a plain pass-through (the reference read-ahead is tested against).
    pub fn new(reader: R, enabled: bool) -> Self {
        ReadAhead {
            path: reader.path().to_string(),
            rows: reader.batch_rows(),
            bytes: reader.bytes_read(),
            records: reader.records_read(),
            state: State::Here(reader),
            enabled,
        }
    }

    /// Source bytes of the batches handed over so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Records of the batches handed over so far.
    pub fn records_read(&self) -> u64 {
        self.records
    }

    pub fn batch_rows(&self) -> usize {
        self.rows
    }

    /// Records per batch (at least 1): from the next batch read here, or, while a thread reads
    /// ahead, from the batch after the one it is reading (see the module documentation).
    pub fn set_batch_rows(&mut self, rows: usize) {
        self.rows = rows.max(1);
        if let State::Here(r) = &mut self.state {
            r.set_batch_rows(self.rows);
        }
    }

    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, DataError> {
        match std::mem::replace(&mut self.state, State::Lost) {
            State::Here(mut reader) => {
                let result = reader.next_batch();
                self.bytes = reader.bytes_read();
                self.records = reader.records_read();
                let more = self.enabled && matches!(result, Ok(Some(_))) && !reader.at_end();
                self.state = if more {
                    self.start(reader)
                } else {
                    State::Here(reader)
                };
                result
            }
            State::Ahead {
                items,
                sizes,
                thread,
            } => {
                // the size of the batch after the one asked for (the thread takes it once it
                // handed this one over; it is gone when this one is the last)
                let _ = sizes.send(self.rows);
                self.receive(items, sizes, thread)
            }
            State::Lost => Err(self.panicked(&"the reader was lost to an earlier panic")),
        }
    }

    fn receive(
        &mut self,
        items: Receiver<Item>,
        sizes: Sender<usize>,
        thread: JoinHandle<Option<R>>,
    ) -> Result<Option<RecordBatch>, DataError> {
        match items.recv() {
            Ok(item) => {
                self.bytes = item.bytes;
                self.records = item.records;
                if matches!(item.result, Ok(Some(_))) {
                    self.state = State::Ahead {
                        items,
                        sizes,
                        thread,
                    };
                    return item.result;
                }
                // the end or an error: the thread returns the reader right after it
                self.rejoin(thread)?;
                item.result
            }
            // the thread ended without handing anything over: it panicked
            Err(_) => {
                self.rejoin(thread)?;
                Err(self.panicked(&"the read-ahead thread ended early"))
            }
        }
    }

    /// Take the reader back from the thread that has ended (or is ending) its reads.
    fn rejoin(&mut self, thread: JoinHandle<Option<R>>) -> Result<(), DataError> {
        match thread.join() {
            Ok(Some(reader)) => {
                self.state = State::Here(reader);
                Ok(())
            }
            Ok(None) => Err(self.panicked(&"the read-ahead thread lost the reader")),
            Err(panic) => Err(self.panicked(panic.as_ref())),
        }
    }

    /// Hand `reader` to a new thread; without one (spawn failed), keep reading here.
    fn start(&self, reader: R) -> State<R> {
        let (give, take) = sync_channel::<R>(1);
        let (items_tx, items) = sync_channel::<Item>(0);
        let (sizes, sizes_rx) = channel::<usize>();
        let mut rows = self.rows;
        let spawned = std::thread::Builder::new()
            .name("tallyclerk-read".into())
            .spawn(move || {
                let mut reader = take.recv().ok()?;
                loop {
                    if rows != reader.batch_rows() {
                        reader.set_batch_rows(rows);
                    }
                    let result = reader.next_batch();
                    let last = !matches!(result, Ok(Some(_)));
                    let item = Item {
                        result,
                        bytes: reader.bytes_read(),
                        records: reader.records_read(),
                    };
                    // fails when the wrapper was dropped: the reader goes with this thread
                    items_tx.send(item).ok()?;
                    if last {
                        return Some(reader);
                    }
                    // sent with the request for the batch just handed over
                    rows = sizes_rx.recv().ok()?;
                }
            });
        match spawned {
            Ok(thread) => match give.send(reader) {
                Ok(()) => State::Ahead {
                    items,
                    sizes,
                    thread,
                },
                // the channel has room for the reader and the thread holds its receiving end
                // until it has it; should the send fail anyway, the reader comes back in it
                Err(back) => State::Here(back.0),
            },
            Err(_) => State::Here(reader),
        }
    }

    fn panicked(&self, panic: &(dyn std::any::Any + Send)) -> DataError {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_string());
        DataError::Source {
            message: format!("{}: internal error while reading: {what}", self.path),
            path: self.path.clone(),
            line: None,
        }
    }
}

#[cfg(test)]
#[path = "read_ahead_tests.rs"]
mod tests;
