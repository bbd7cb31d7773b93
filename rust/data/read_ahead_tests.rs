//! [`ReadAhead`] against the reader it wraps: generated CSV and JSONL documents, batch sizes
//! changed between batches, read errors part-way, give the same batches (cells, record numbers,
//! lines, bytes, rejects), errors, ends and counts with read-ahead on and off; a panicking
//! reader comes back as an error; dropping the wrapper while a batch is read ahead returns at
//! once.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::data::chunky::Chunky;
use crate::data::{CsvOptions, JsonlOptions};

/// Everything a caller can observe in `calls` calls; `sizes[i]` is set before call i.
fn observe<R: BatchSource>(reader: R, ahead: bool, sizes: &[usize], calls: usize) -> Vec<String> {
    let mut r = ReadAhead::new(reader, ahead);
    let mut out = vec![format!("start {} {}", r.bytes_read(), r.records_read())];
    for call in 0..calls {
        if let Some(&rows) = sizes.get(call) {
            r.set_batch_rows(rows);
        }
        let seen = match r.next_batch() {
            Ok(Some(b)) => format!(
                "batch {:?} {:?} {:?} {:?} {} bytes",
                b.columns,
                b.record_numbers,
                b.lines,
                b.rejects().collect::<Vec<_>>(),
                b.bytes
            ),
            Ok(None) => "end".to_string(),
            Err(e) => format!("error {e}"),
        };
        out.push(format!("{seen} | {} {}", r.bytes_read(), r.records_read()));
    }
    out
}

/// With read-ahead, batch 0 is read with the size set before call 0 and batch k >= 1 with the
/// size set before call k-1: the reference, reading each batch when asked, gets the sizes
/// shifted by one (`[s0, s0, s1, s2, ...]`).
fn shifted(sizes: &[usize]) -> Vec<usize> {
    match sizes.first() {
        Some(&s0) => std::iter::once(s0).chain(sizes.iter().copied()).collect(),
        None => Vec::new(),
    }
}

fn csv_doc() -> impl Strategy<Value = Vec<u8>> {
    let cell = prop_oneof![
        Just(String::new()),
        "[a-z0-9]{1,6}",
        Just("\"q,\"\"x\"\"\"".to_string()),
        Just("\"multi\nline\"".to_string()),
    ];
    let row = prop::collection::vec(cell, 1..4).prop_map(|cells| cells.join(","));
    let end = prop_oneof![Just("\n"), Just("\r\n")];
    (prop::collection::vec((row, end), 0..60), any::<bool>()).prop_map(|(rows, bad)| {
        let mut doc = b"a,b,c\n".to_vec();
        for (i, (row, end)) in rows.iter().enumerate() {
            if bad && i == 7 {
                doc.extend_from_slice(b"\xff\xfe,x,y\n");
            }
            doc.extend_from_slice(row.as_bytes());
            doc.extend_from_slice(end.as_bytes());
        }
        doc
    })
}

fn jsonl_doc() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![
        Just("1".to_string()),
        Just("123456789012345678901234567890".to_string()),
        Just("-2.5e3".to_string()),
        Just("\"t\\u00e9xt\"".to_string()),
        Just("null".to_string()),
        Just("{\"deep\": [1, {\"x\": 2}]}".to_string()),
        Just("true".to_string()),
    ];
    let line = prop_oneof![
        4 => (value.clone(), value).prop_map(|(a, b)| format!("{{\"a\": {a}, \"b\": {b}}}")),
        1 => Just("{\"a\": ".to_string()),
        1 => Just(String::new()),
        1 => Just("[1, 2]".to_string()),
    ];
    prop::collection::vec(line, 0..60).prop_map(|lines| {
        let mut doc = Vec::new();
        for l in lines {
            doc.extend_from_slice(l.as_bytes());
            doc.push(b'\n');
        }
        doc
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn csv_reads_the_same_ahead_or_not(
        doc in csv_doc(),
        chunk in 1usize..64,
        fail in prop::option::of(0usize..400),
        first in 1usize..8,
        sizes in prop::collection::vec(1usize..8, 0..12),
    ) {
        let open = || {
            let opts = CsvOptions { batch_rows: first, ..CsvOptions::default() };
            CsvReader::from_reader("t.csv", Chunky::boxed(&doc, chunk, fail), &opts)
        };
        let (Ok(plain), Ok(ahead)) = (open(), open()) else {
            return Ok(()); // a header error: no reader to wrap
        };
        prop_assert_eq!(
            observe(plain, false, &shifted(&sizes), sizes.len() + 4),
            observe(ahead, true, &sizes, sizes.len() + 4)
        );
    }

    #[test]
    fn jsonl_reads_the_same_ahead_or_not(
        doc in jsonl_doc(),
        first in 1usize..8,
        sizes in prop::collection::vec(1usize..8, 0..12),
    ) {
        // the JSONL reader reads its file twice (columns first): a real file
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &doc).unwrap();
        let path = file.path().to_str().unwrap();
        let open = || {
            let opts = JsonlOptions { batch_rows: first, ..JsonlOptions::default() };
            JsonlReader::open(path, &opts)
        };
        let (Ok(plain), Ok(ahead)) = (open(), open()) else {
            return Ok(());
        };
        prop_assert_eq!(
            observe(plain, false, &shifted(&sizes), sizes.len() + 4),
            observe(ahead, true, &sizes, sizes.len() + 4)
        );
    }
}

/// A source of `batches` one-row batches that panics on call `panic_at` (or sleeps `slow`
/// before each batch).
struct Scripted {
    calls: usize,
    batches: usize,
    panic_at: Option<usize>,
    slow: Duration,
    rows: usize,
}

impl Scripted {
    fn new(batches: usize) -> Self {
        Scripted {
            calls: 0,
            batches,
            panic_at: None,
            slow: Duration::ZERO,
            rows: 1,
        }
    }
}

impl BatchSource for Scripted {
    fn next_batch(&mut self) -> Result<Option<RecordBatch>, DataError> {
        self.calls += 1;
        std::thread::sleep(self.slow);
        if self.panic_at == Some(self.calls) {
            panic!("planted");
        }
        if self.calls > self.batches {
            return Ok(None);
        }
        let mut b = RecordBatch::new_text(vec!["a".into()], 1, &[1]);
        b.push_text_row(["x"].into_iter(), self.calls as u64, self.calls as u64);
        Ok(Some(b))
    }
    fn bytes_read(&self) -> u64 {
        self.calls.min(self.batches) as u64 * 10
    }
    fn records_read(&self) -> u64 {
        self.calls.min(self.batches) as u64
    }
    fn batch_rows(&self) -> usize {
        self.rows
    }
    fn set_batch_rows(&mut self, rows: usize) {
        self.rows = rows;
    }
    fn at_end(&self) -> bool {
        self.calls >= self.batches
    }
    fn path(&self) -> &str {
        "scripted.csv"
    }
}

#[test]
fn a_panic_on_the_thread_is_an_error_naming_the_file() {
    let mut r = ReadAhead::new(
        Scripted {
            panic_at: Some(3),
            ..Scripted::new(5)
        },
        true,
    );
    assert!(r.next_batch().unwrap().is_some());
    assert!(r.next_batch().unwrap().is_some());
    let err = r.next_batch().unwrap_err().to_string();
    assert!(
        err.contains("scripted.csv") && err.contains("planted"),
        "{err}"
    );
    // the reader went with the thread: later calls keep failing, they do not hang or panic
    assert!(r.next_batch().is_err());
}

#[test]
fn a_one_batch_source_starts_no_thread() {
    let mut r = ReadAhead::new(Scripted::new(1), true);
    assert!(r.next_batch().unwrap().is_some());
    assert!(matches!(r.state, State::Here(_)));
    assert!(r.next_batch().unwrap().is_none());
    let mut r = ReadAhead::new(Scripted::new(3), true);
    assert!(r.next_batch().unwrap().is_some());
    assert!(matches!(r.state, State::Ahead { .. }));
    for _ in 0..2 {
        assert!(r.next_batch().unwrap().is_some());
    }
    assert!(r.next_batch().unwrap().is_none());
    assert!(
        matches!(r.state, State::Here(_)),
        "the thread handed the reader back"
    );
    assert!(r.next_batch().unwrap().is_none());
}

#[test]
fn dropping_while_a_batch_is_read_ahead_does_not_wait() {
    let mut r = ReadAhead::new(
        Scripted {
            slow: Duration::from_millis(300),
            ..Scripted::new(100)
        },
        true,
    );
    assert!(r.next_batch().unwrap().is_some()); // the thread starts reading the second
    let t = Instant::now();
    drop(r);
    assert!(
        t.elapsed() < Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn counts_are_those_of_the_batches_handed_over() {
    let mut r = ReadAhead::new(
        Scripted {
            slow: Duration::from_millis(5),
            ..Scripted::new(4)
        },
        true,
    );
    for k in 1..=4u64 {
        assert!(r.next_batch().unwrap().is_some());
        std::thread::sleep(Duration::from_millis(20)); // the next one is read meanwhile
        assert_eq!((r.bytes_read(), r.records_read()), (k * 10, k));
    }
    assert!(r.next_batch().unwrap().is_none());
    assert_eq!((r.bytes_read(), r.records_read()), (40, 4));
}
