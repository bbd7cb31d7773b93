//! Streaming CSV reader: csv-core's state machine driven directly, so that memory stays
//! bounded (a field larger than `max_field_bytes` is an error before it is buffered whole),
//! every record keeps its exact physical start line (CRLF, LF and lone CR all count, quoted
//! newlines too, blank lines are skipped but counted) and the raw text of a rejected record is
//! the text as read.
//!
//! Hostile input, decided:
//! * UTF-8 BOM: stripped. A UTF-16 BOM when the encoding is utf-8: the file is read as UTF-16
//!   (a BOM is unambiguous). Other encodings are transcoded strictly (see `transcode`);
//!   malformed bytes in a transcoded file fail the file (`SourceError`).
//! * Invalid UTF-8 in a record of a utf-8 file: that row is rejected (rule `encoding`), the
//!   rest loads. In the header: `SourceError`.
//! * Too few / too many fields: the row is rejected (rule `row-length`).
//! * Unterminated quote at end of file: `SourceError` naming the line where that record
//!   starts (the rest of the file was swallowed into one field, so nothing after it is
//!   trustworthy; the caller's one transaction per file rolls the whole file back).
//! * Text after a closing quote (`"ab"c`): read as csv-core does, `abc` (loaded as data).
//! * NUL bytes: loaded as data.
//! * A field over `max_field_bytes`, a record over 4 x that (at least 64 MiB) or over 100,000
//!   fields: `SourceError` naming the line.
//! * Empty file (or only blank lines): `SourceError` "empty file: no header row". Empty or
//!   duplicate header names: `SourceError` naming them. NUL bytes in the header (the sign of
//!   UTF-16 without a BOM read as UTF-8): `SourceError` suggesting the encoding.
//! * Missing path, a directory, unreadable: `SourceError` with the path.

use std::io::{self, BufRead, Read};

use csv_core::{ReadRecordResult, Reader as CoreReader, ReaderBuilder};
use encoding_rs::Encoding;

use super::batch::{Column, RecordBatch, RejectInfo};
use super::csv_plain::{split_line, Plain};
use super::error::DataError;
use super::input::{self, Compression};
use super::transcode::Transcoder;

/// Reader options (the Python keyword arguments).
#[derive(Debug, Clone)]
pub struct CsvOptions {
    pub delimiter: String,
    pub quote: String,
    pub encoding: String,
    pub batch_rows: usize,
    pub max_field_bytes: usize,
    /// None: detect it from the content's magic bytes.
    pub compression: Option<Compression>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: ",".into(),
            quote: "\"".into(),
            encoding: "utf-8".into(),
            batch_rows: 10_000,
            max_field_bytes: 16 * 1024 * 1024,
            compression: None,
        }
    }
}

const MAX_FIELDS: usize = 100_000;

type Text = Box<dyn BufRead + Send>;

enum Input {
    Utf8(Text),
    Decoded(Box<Transcoder<Text>>),
}

impl Input {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self {
            Input::Utf8(r) => r.fill_buf(),
            Input::Decoded(r) => r.fill_buf(),
        }
    }

    fn consume(&mut self, n: usize) {
        match self {
            Input::Utf8(r) => r.consume(n),
            Input::Decoded(r) => r.consume(n),
        }
    }
}

/// What one call to `read_record` found.
struct Rec {
    line: u64,
    /// Bytes of field text: of `out` (csv-core), of `raw` (a plain line).
    outlen: usize,
    nfields: usize,
    /// A plain line (`csv_plain`): the fields are slices of `raw`, each after a delimiter.
    plain: bool,
}

impl Rec {
    /// The bytes between field `k`'s start and the end of the previous field (the
    /// delimiter a plain line's fields keep between them).
    fn gap(&self) -> usize {
        usize::from(self.plain)
    }
}

/// Streams a CSV file as [`RecordBatch`]es.
pub struct CsvReader {
    path: String,
    input: Input,
    core: CoreReader,
    quote: Option<u8>,
    delimiter: u8,
    header: Vec<String>,
    out: Vec<u8>,
    ends: Vec<usize>,
    raw: Vec<u8>,
    /// Line breaks consumed so far; `prev_cr` pairs a CR with a following LF across reads.
    lines: u64,
    prev_cr: bool,
    /// Bytes of the decoded stream consumed (plus a stripped BOM).
    consumed: u64,
    records_read: u64,
    batch_rows: usize,
    max_field: usize,
    max_record: usize,
    finished: bool,
    col_bytes_hint: Vec<usize>,
    /// Source position at the end of the last batch (batches cover the header too).
    last_pos: u64,
    /// Split plain lines without csv-core (see `csv_plain`); on once the header is read.
    plain: bool,
    /// The buffered input starts with a record's first byte (set by a plain line, which saw
    /// it; nothing consumes input until the next `read_record`, which takes it).
    at_record: bool,
}

/// Count line breaks: every CR, and every LF not right after a CR.
fn count_breaks(b: &[u8], prev_cr: &mut bool) -> u64 {
    let mut n = 0;
    for i in memchr::memchr2_iter(b'\r', b'\n', b) {
        if b[i] == b'\r' {
            n += 1;
        } else {
            let after_cr = if i == 0 { *prev_cr } else { b[i - 1] == b'\r' };
            n += u64::from(!after_cr);
        }
    }
    if let Some(&last) = b.last() {
        *prev_cr = last == b'\r';
    }
    n
}

/// Whether a record (read to end of file) ends inside a quoted field.
fn ends_inside_quotes(raw: &[u8], delim: u8, quote: Option<u8>) -> bool {
    #[derive(PartialEq)]
    enum S {
        Start,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let Some(q) = quote else {
        return false;
    };
    let ends_field = |c: u8| c == delim || c == b'\n' || c == b'\r';
    let mut s = S::Start;
    for &c in raw {
        s = match s {
            S::Start if c == q => S::Quoted,
            S::Start | S::Unquoted | S::QuoteInQuoted if ends_field(c) => S::Start,
            S::Start | S::Unquoted => S::Unquoted,
            S::Quoted if c == q => S::QuoteInQuoted,
            S::Quoted => S::Quoted,
            S::QuoteInQuoted if c == q => S::Quoted,
            S::QuoteInQuoted => S::Unquoted,
        };
    }
    s == S::Quoted
}

fn one_ascii(what: &str, s: &str, allow_empty: bool) -> Result<Option<u8>, DataError> {
    match s.as_bytes() {
        [] if allow_empty => Ok(None),
        [c] if c.is_ascii() && *c != b'\r' && *c != b'\n' => Ok(Some(*c)),
        _ => Err(DataError::Config(format!(
            "{what} must be one ASCII character other than CR or LF, not {s:?}"
        ))),
    }
}

/// An encoding by WHATWG label, also taking Python's spellings (`utf_16_le`, `utf-16-be`).
/// Whether the CSV reader decodes `label` (the encodings of `--encoding`): a configuration
/// check made before a load starts, with the very rules of [`CsvReader`]'s opening.
pub fn known_encoding(label: &str) -> bool {
    let normalized = label.trim().to_ascii_lowercase().replace('_', "-");
    matches!(
        normalized.as_str(),
        "utf-8"
            | "utf8"
            | "utf-8-sig"
            | "u8"
            | "latin-1"
            | "latin1"
            | "iso-8859-1"
            | "iso8859-1"
            | "l1"
            | "iso-latin-1"
    ) || matches!(whatwg_encoding(label, &normalized), Some(e) if e != encoding_rs::REPLACEMENT)
}

fn whatwg_encoding(given: &str, normalized: &str) -> Option<&'static Encoding> {
    let lower = given.trim().to_ascii_lowercase();
    let compact = normalized.replace("-le", "le").replace("-be", "be");
    let found = [lower.as_str(), normalized, compact.as_str()]
        .into_iter()
        .find_map(|l| Encoding::for_label(l.as_bytes()));
    found
}

fn trim_terminator(raw: &[u8]) -> &[u8] {
    let mut end = raw.len();
    while end > 0 && matches!(raw[end - 1], b'\r' | b'\n') {
        end -= 1;
    }
    &raw[..end]
}

impl CsvReader {
    /// Open `path` (possibly compressed, see `input`) and read its header row.
    pub fn open(path: &str, opts: &CsvOptions) -> Result<Self, DataError> {
        Self::check_options(opts)?;
        let input = input::open_path(path, opts.compression)?;
        Self::from_text(path, input.reader, opts)
    }

    /// Read CSV from any byte stream (`name` names it in errors and rejects), possibly
    /// compressed: a remote object's stream, a Python file object's adapter.
    pub fn from_reader(
        name: &str,
        raw: Box<dyn Read + Send>,
        opts: &CsvOptions,
    ) -> Result<Self, DataError> {
        Self::check_options(opts)?;
        let input = input::wrap(name, raw, opts.compression)?;
        Self::from_text(name, input.reader, opts)
    }

    fn check_options(opts: &CsvOptions) -> Result<(), DataError> {
        let delimiter = one_ascii("delimiter", &opts.delimiter, false)?.unwrap_or(b',');
        let quote = one_ascii("quote", &opts.quote, true)?;
        if quote == Some(delimiter) {
            return Err(DataError::Config("delimiter and quote must differ".into()));
        }
        if opts.batch_rows == 0 || opts.max_field_bytes == 0 {
            return Err(DataError::Config(
                "batch_rows and max_field_bytes must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Read the CSV of the decompressed text `buffered`.
    fn from_text(path: &str, mut buffered: Text, opts: &CsvOptions) -> Result<Self, DataError> {
        let delimiter = one_ascii("delimiter", &opts.delimiter, false)?.unwrap_or(b',');
        let quote = one_ascii("quote", &opts.quote, true)?;
        let src_err = |reason: String| DataError::source(path, None, reason);
        let label = opts.encoding.trim().to_ascii_lowercase().replace('_', "-");
        let mut consumed = 0;
        let input = match label.as_str() {
            "utf-8" | "utf8" | "utf-8-sig" | "u8" => {
                let head = buffered
                    .fill_buf()
                    .map_err(|e| src_err(format!("cannot read: {e}")))?;
                if head.starts_with(b"\xEF\xBB\xBF") {
                    buffered.consume(3);
                    consumed = 3;
                    Input::Utf8(buffered)
                } else if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
                    Input::Decoded(Box::new(Transcoder::whatwg(
                        buffered,
                        encoding_rs::UTF_16LE,
                    )))
                } else {
                    Input::Utf8(buffered)
                }
            }
            "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" | "l1" | "iso-latin-1" => {
                Input::Decoded(Box::new(Transcoder::latin1(buffered)))
            }
            other => match whatwg_encoding(&opts.encoding, other) {
                Some(enc) if enc == encoding_rs::UTF_8 => Input::Utf8(buffered),
                Some(enc) if enc != encoding_rs::REPLACEMENT => {
                    Input::Decoded(Box::new(Transcoder::whatwg(buffered, enc)))
                }
                _ => {
                    return Err(src_err(format!(
                        "unknown encoding {:?} (use utf-8, utf-16, latin-1, cp1252, ...)",
                        opts.encoding
                    )))
                }
            },
        };
        let core = ReaderBuilder::new()
            .delimiter(delimiter)
            .quote(quote.unwrap_or(b'"'))
            .quoting(quote.is_some())
            .build();
        let mut r = CsvReader {
            path: path.to_string(),
            input,
            core,
            quote,
            delimiter,
            header: Vec::new(),
            out: vec![0; 64 * 1024],
            ends: vec![0; 64],
            raw: Vec::with_capacity(1024),
            lines: 0,
            prev_cr: false,
            consumed,
            records_read: 0,
            batch_rows: opts.batch_rows,
            max_field: opts.max_field_bytes,
            max_record: opts.max_field_bytes.saturating_mul(4).max(64 * 1024 * 1024),
            finished: false,
            col_bytes_hint: Vec::new(),
            last_pos: 0,
            plain: false,
            at_record: false,
        };
        r.read_header()?;
        r.plain = true;
        Ok(r)
    }

    fn read_header(&mut self) -> Result<(), DataError> {
        let Some(rec) = self.read_record()? else {
            return Err(DataError::source(
                &self.path,
                None,
                "empty file: no header row",
            ));
        };
        let line = Some(rec.line);
        let data = &self.out[..rec.outlen];
        let text = std::str::from_utf8(data)
            .ok()
            .filter(|s| {
                self.ends[..rec.nfields]
                    .iter()
                    .all(|&e| s.is_char_boundary(e))
            })
            .ok_or_else(|| {
                DataError::source(
                    &self.path,
                    line,
                    "the header row is not valid UTF-8 (wrong encoding?)",
                )
            })?;
        let mut start = 0;
        let mut names: Vec<String> = Vec::with_capacity(rec.nfields);
        for &e in &self.ends[..rec.nfields] {
            names.push(text[start..e].to_string());
            start = e;
        }
        if names.iter().any(|n| n.contains('\0')) {
            return Err(DataError::source(
                &self.path,
                line,
                "the header row contains NUL bytes (UTF-16 without a byte order mark? pass \
                 encoding=\"utf-16-le\" or \"utf-16-be\")",
            ));
        }
        let empty: Vec<String> = names
            .iter()
            .enumerate()
            .filter(|(_, n)| n.is_empty())
            .map(|(i, _)| (i + 1).to_string())
            .collect();
        if !empty.is_empty() {
            return Err(DataError::source(
                &self.path,
                line,
                format!(
                    "empty column name in the header (column {})",
                    empty.join(", ")
                ),
            ));
        }
        let mut seen = std::collections::HashMap::new();
        let mut dups: Vec<String> = Vec::new();
        for (i, n) in names.iter().enumerate() {
            if let Some(first) = seen.insert(n.as_str(), i + 1) {
                dups.push(format!("{n:?} (columns {first} and {})", i + 1));
            }
        }
        if !dups.is_empty() {
            return Err(DataError::source(
                &self.path,
                line,
                format!("duplicate column names in the header: {}", dups.join(", ")),
            ));
        }
        self.col_bytes_hint = vec![0; names.len()];
        self.header = names;
        Ok(())
    }

    fn io_error(&self, e: &io::Error) -> DataError {
        let reason = if e.kind() == io::ErrorKind::InvalidData {
            e.to_string()
        } else {
            format!("read error: {e}")
        };
        DataError::source(&self.path, Some(self.lines + 1), reason)
    }

    /// Skip blank lines (counting them); returns whether the input is at its end.
    fn skip_blank_lines(&mut self) -> Result<bool, DataError> {
        loop {
            let buf = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) => return Err(self.io_error(&e)),
            };
            let n = buf
                .iter()
                .position(|&c| c != b'\r' && c != b'\n')
                .unwrap_or(buf.len());
            if buf.is_empty() {
                return Ok(true);
            }
            if n == 0 {
                return Ok(false);
            }
            let more = n == buf.len();
            self.lines += count_breaks(&buf[..n], &mut self.prev_cr);
            self.input.consume(n);
            self.consumed += n as u64;
            if !more {
                return Ok(false);
            }
        }
    }

    /// Read one record into `out`/`ends`/`raw`; None at end of file.
    fn read_record(&mut self) -> Result<Option<Rec>, DataError> {
        // Skip blank lines ourselves so the record's start line is exact (nothing to skip
        // when the last plain line saw the next record's first byte buffered after it).
        if !std::mem::take(&mut self.at_record) {
            self.skip_blank_lines()?;
        }
        let line = self.lines + 1;
        self.raw.clear();
        let (outlen, nfields, at_eof, plain) = match self.plain_record()? {
            Some(p) => (p.len, p.nfields, false, true),
            None => match self.core_record(line)? {
                Some((outlen, nfields, at_eof)) => (outlen, nfields, at_eof, false),
                None => return Ok(None),
            },
        };
        let rec = Rec {
            line,
            outlen,
            nfields,
            plain,
        };
        let mut start = 0;
        for (k, &e) in self.ends[..nfields].iter().enumerate() {
            if e - start > self.max_field {
                return Err(self.too_big(line, k + 1));
            }
            start = e + rec.gap();
        }
        if at_eof && ends_inside_quotes(&self.raw, self.delimiter, self.quote) {
            return Err(DataError::source(
                &self.path,
                Some(line),
                "unterminated quoted field: a quote opened in the record starting here is \
                 never closed before the end of the file",
            ));
        }
        Ok(Some(rec))
    }

    /// The record at the start of the buffered input if it is a plain line (see
    /// `csv_plain`), read as csv-core would read it, the input consumed past it.
    fn plain_record(&mut self) -> Result<Option<Plain>, DataError> {
        if !self.plain {
            return Ok(None);
        }
        let input = match self.input.fill_buf() {
            Ok(b) => b,
            Err(e) => return Err(self.io_error(&e)),
        };
        let Some(p) = split_line(input, self.delimiter, self.quote, &mut self.ends) else {
            return Ok(None);
        };
        // a field over the limit: csv-core's path reports it (with the input where it stops)
        let mut start = 0;
        for &e in &self.ends[..p.nfields] {
            if e - start > self.max_field {
                return Ok(None);
            }
            start = e + 1;
        }
        self.raw.extend_from_slice(&input[..p.consumed]);
        // one line break, the terminator (the line holds no other CR or LF); a CRLF's LF, when
        // buffered, is taken too: `skip_blank_lines` would pair it with the CR (no new line)
        self.lines += 1;
        let mut taken = p.consumed;
        let cr = input[taken - 1] == b'\r';
        if cr && input.get(taken) == Some(&b'\n') {
            taken += 1;
        }
        self.prev_cr = cr && taken == p.consumed;
        // the next record starts right here: the next `read_record` need not skip blank lines
        self.at_record = input.get(taken).is_some_and(|&c| c != b'\r' && c != b'\n');
        self.input.consume(taken);
        self.consumed += taken as u64;
        Ok(Some(p))
    }

    /// Read one record through csv-core: (output bytes, fields, read to end of file), None at
    /// end of file.
    fn core_record(&mut self, line: u64) -> Result<Option<(usize, usize, bool)>, DataError> {
        let (mut outlen, mut nfields) = (0usize, 0usize);
        let at_eof;
        loop {
            let input = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) => return Err(self.io_error(&e)),
            };
            let eof = input.is_empty();
            let (res, nin, nout, nend) =
                self.core
                    .read_record(input, &mut self.out[outlen..], &mut self.ends[nfields..]);
            self.raw.extend_from_slice(&input[..nin]);
            self.lines += count_breaks(&input[..nin], &mut self.prev_cr);
            self.input.consume(nin);
            self.consumed += nin as u64;
            outlen += nout;
            nfields += nend;
            match res {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    let field_start = if nfields == 0 {
                        0
                    } else {
                        self.ends[nfields - 1]
                    };
                    if outlen - field_start > self.max_field {
                        return Err(self.too_big(line, nfields + 1));
                    }
                    if outlen >= self.max_record {
                        return Err(DataError::source(
                            &self.path,
                            Some(line),
                            format!("record larger than {} bytes", self.max_record),
                        ));
                    }
                    let grow = self
                        .out
                        .len()
                        .min(
                            self.max_record
                                .saturating_add(1)
                                .saturating_sub(self.out.len()),
                        )
                        .max(1);
                    self.out.resize(self.out.len() + grow, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    if self.ends.len() >= MAX_FIELDS {
                        return Err(DataError::source(
                            &self.path,
                            Some(line),
                            format!("record with more than {MAX_FIELDS} fields"),
                        ));
                    }
                    self.ends.resize(self.ends.len() * 2, 0);
                }
                ReadRecordResult::Record => {
                    at_eof = eof;
                    break;
                }
                ReadRecordResult::End => return Ok(None),
            }
        }
        Ok(Some((outlen, nfields, at_eof)))
    }

    fn too_big(&self, line: u64, field: usize) -> DataError {
        DataError::source(
            &self.path,
            Some(line),
            format!(
                "field {field} is larger than max_field_bytes ({} bytes)",
                self.max_field
            ),
        )
    }

    fn position(&self) -> u64 {
        match &self.input {
            Input::Utf8(_) => self.consumed,
            Input::Decoded(t) => t.src_read,
        }
    }

    /// Records per batch from the next batch on (the adaptive batch size); at least 1.
    pub fn set_batch_rows(&mut self, rows: usize) {
        self.batch_rows = rows.max(1);
    }

    pub fn batch_rows(&self) -> usize {
        self.batch_rows
    }

    /// The next batch of at most `batch_rows` records; None at end of file. After an error
    /// the reader is finished. Never inlined: one call a batch, and a symbol profiles can name.
    #[inline(never)]
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, DataError> {
        if self.finished {
            return Ok(None);
        }
        let res = self.fill_batch();
        if res.is_err() {
            self.finished = true;
        }
        res
    }

    fn fill_batch(&mut self) -> Result<Option<RecordBatch>, DataError> {
        let ncols = self.header.len();
        let cap = self.batch_rows.min(16 * 1024);
        let mut batch = RecordBatch::new_text(self.header.clone(), cap, &self.col_bytes_hint);
        batch.source = Some(self.path.clone());
        batch.set_delimiter(self.delimiter);
        while batch.len() < self.batch_rows {
            let Some(rec) = self.read_record()? else {
                self.finished = true;
                break;
            };
            self.records_read += 1;
            let number = self.records_read;
            let ends = &self.ends[..rec.nfields];
            if rec.nfields != ncols {
                let raw = String::from_utf8_lossy(trim_terminator(&self.raw)).into_owned();
                let info = RejectInfo {
                    column: None,
                    rule: "row-length".into(),
                    reason: format!("expected {ncols} fields, found {}", rec.nfields),
                    raw: Some(raw),
                    masked: false,
                };
                batch.push_rejected_row(number, rec.line, info);
                continue;
            }
            // A plain line is valid UTF-8 exactly when each of its fields is, and then every
            // field boundary (next to an ASCII delimiter) is a char boundary; csv-core's output
            // joins the fields, so there each boundary is checked.
            let (text, gap) = if rec.plain {
                (&self.raw[..rec.outlen], rec.gap())
            } else {
                (&self.out[..rec.outlen], rec.gap())
            };
            match std::str::from_utf8(text) {
                Ok(s) if rec.plain || ends.iter().all(|&e| s.is_char_boundary(e)) => {
                    let mut start = 0;
                    batch.push_text_row(
                        ends.iter().map(|&e| {
                            let f = &s[start..e];
                            start = e + gap;
                            f
                        }),
                        number,
                        rec.line,
                    );
                }
                _ => {
                    let raw = String::from_utf8_lossy(trim_terminator(&self.raw)).into_owned();
                    let info = RejectInfo {
                        column: None,
                        rule: "encoding".into(),
                        reason: "invalid UTF-8 in the record (is the file in another encoding?)"
                            .into(),
                        raw: Some(raw),
                        masked: false,
                    };
                    batch.push_rejected_row(number, rec.line, info);
                }
            }
        }
        // A full batch right before trailing blank lines and the end of the file covers them.
        if !self.finished && self.skip_blank_lines()? {
            self.finished = true;
        }
        let pos = self.position();
        batch.bytes = pos - self.last_pos;
        self.last_pos = pos;
        if batch.is_empty() {
            return Ok(None);
        }
        for (hint, col) in self.col_bytes_hint.iter_mut().zip(&batch.columns) {
            if let Column::Text(c) = col {
                *hint = c.bytes() + c.bytes() / 8;
            }
        }
        Ok(Some(batch))
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Source bytes read so far (exact for utf-8 sources, read-buffer granular when decoding).
    pub fn bytes_read(&self) -> u64 {
        self.position()
    }

    pub fn records_read(&self) -> u64 {
        self.records_read
    }

    /// The input is used up (or failed): the next batch is `None`.
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// Read every record through csv-core (the reference the plain-line split is tested
    /// against).
    #[cfg(test)]
    pub(crate) fn without_plain_lines(mut self) -> Self {
        self.plain = false;
        self
    }
}

#[cfg(test)]
#[path = "csv_plain_tests.rs"]
mod plain_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::batch::CellRef;
    use std::io::Write;

    fn write(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    fn read_all(
        bytes: &[u8],
        opts: &CsvOptions,
    ) -> Result<(Vec<String>, Vec<RecordBatch>), DataError> {
        let f = write(bytes);
        let mut r = CsvReader::open(f.path().to_str().unwrap(), opts)?;
        let mut out = Vec::new();
        while let Some(b) = r.next_batch()? {
            out.push(b);
        }
        Ok((r.header().to_vec(), out))
    }

    fn cells(b: &RecordBatch, row: usize) -> Vec<String> {
        b.columns
            .iter()
            .map(|c| match c.get(row) {
                CellRef::Text(s) => s.to_string(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn known_encoding_agrees_with_opening_a_reader() {
        for label in [
            "utf-8",
            "UTF8",
            "latin_1",
            "ISO-8859-1",
            "utf-16",
            "cp1252",
            "shift_jis",
        ] {
            assert!(known_encoding(label), "{label}");
            let o = CsvOptions {
                encoding: label.to_string(),
                ..CsvOptions::default()
            };
            assert!(read_all(b"a\n1\n", &o).is_ok(), "{label}");
        }
        for label in ["nope", "", "replacement", "utf-9"] {
            assert!(!known_encoding(label), "{label}");
            let o = CsvOptions {
                encoding: label.to_string(),
                ..CsvOptions::default()
            };
            assert!(read_all(b"a\n1\n", &o).is_err(), "{label}");
        }
    }

    #[test]
    fn lines_with_crlf_lf_cr_quoted_newlines_and_blank_lines() {
        let data = b"\xEF\xBB\xBFa,b\r\n1,\"x\r\ny\"\r\n\r\n\n2,z\r3,\"q\"\"q\"\n\n4,w";
        let (h, batches) = read_all(data, &CsvOptions::default()).unwrap();
        assert_eq!(h, ["a", "b"]);
        let b = &batches[0];
        assert_eq!(b.record_numbers, [1, 2, 3, 4]);
        assert_eq!(b.lines, [2, 6, 7, 9]);
        assert_eq!(cells(b, 0), ["1", "x\r\ny"]);
        assert_eq!(cells(b, 2), ["3", "q\"q"]);
        assert_eq!(cells(b, 3), ["4", "w"]);
        assert_eq!(b.bytes, data.len() as u64);
    }

    #[test]
    fn batches_and_row_length() {
        let data = b"a,b\n1,2\n3\n4,5,6\n7,8\n\r\n\n";
        let o = CsvOptions {
            batch_rows: 2,
            ..CsvOptions::default()
        };
        let (_, batches) = read_all(data, &o).unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].num_rejected(), 1);
        let r = batches[0].reject_info(1).unwrap();
        assert_eq!(
            (r.rule.as_str(), r.raw.as_deref()),
            ("row-length", Some("3"))
        );
        assert_eq!(
            batches[1].reject_info(0).unwrap().raw.as_deref(),
            Some("4,5,6")
        );
        assert_eq!(batches[1].record_numbers, [3, 4]);
        assert_eq!(
            batches.iter().map(|b| b.bytes).sum::<u64>(),
            data.len() as u64
        );
    }

    #[test]
    fn invalid_utf8_rejects_the_row() {
        let (_, b) = read_all(
            b"a,b\n1,\xff\n2,\xc3\xa9\n3,\xc3,\xa9\n",
            &CsvOptions::default(),
        )
        .unwrap();
        assert_eq!(b[0].reject_info(0).unwrap().rule, "encoding");
        assert_eq!(cells(&b[0], 1), ["2", "é"]);
        // a multibyte char split by a delimiter: row-length, never a panic
        assert!(b[0].is_rejected(2));
    }

    #[test]
    fn hostile_files_are_source_errors() {
        let d = CsvOptions::default();
        let msg = |bytes: &[u8], o: &CsvOptions| read_all(bytes, o).unwrap_err().to_string();
        assert!(msg(b"", &d).contains("empty file: no header row"));
        assert!(msg(b"\n\r\n", &d).contains("empty file"));
        assert!(msg(b"a,,b\n", &d).contains("empty column name"));
        assert!(msg(b"a,b,a\n", &d)
            .contains("duplicate column names in the header: \"a\" (columns 1 and 3)"));
        assert!(msg(b"a,b\n1,2\n3,\"4\n5,6\n", &d).contains("line 3: unterminated quoted field"));
        assert!(msg(b"a\n\"x", &d).contains("unterminated"));
        let small = CsvOptions {
            max_field_bytes: 10,
            ..CsvOptions::default()
        };
        assert!(msg(b"a\n12345678901\n", &small)
            .contains("line 2: field 1 is larger than max_field_bytes"));
        let big = vec![b'x'; 300_000];
        let mut data = b"a,b\n1,".to_vec();
        data.extend(&big);
        let o = CsvOptions {
            max_field_bytes: 100_000,
            ..CsvOptions::default()
        };
        assert!(msg(&data, &o).contains("field 2 is larger"));
        assert!(CsvReader::open("/nonexistent/x.csv", &d)
            .err()
            .unwrap()
            .to_string()
            .contains("no such file"));
        assert!(CsvReader::open("/tmp", &d)
            .err()
            .unwrap()
            .to_string()
            .contains("directory"));
        assert!(msg(b"\xffa\n", &d).contains("header row is not valid UTF-8"));
        let utf16_no_bom: Vec<u8> = "a,b\n1,2\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert!(msg(&utf16_no_bom, &d).contains("utf-16-le"));
        let o = CsvOptions {
            encoding: "utf-16-le".into(),
            ..CsvOptions::default()
        };
        assert_eq!(read_all(&utf16_no_bom, &o).unwrap().0, ["a", "b"]);
    }

    #[test]
    fn closed_quote_at_eof_and_text_after_quote_are_fine() {
        let (_, b) = read_all(b"a,b\n1,\"x\"\"\"", &CsvOptions::default()).unwrap();
        assert_eq!(cells(&b[0], 0), ["1", "x\""]);
        let (_, b) = read_all(b"a,b\n1,\"ab\"c\n", &CsvOptions::default()).unwrap();
        assert_eq!(cells(&b[0], 0), ["1", "abc"]);
        let (_, b) = read_all(b"a,b\n\x00,2\n", &CsvOptions::default()).unwrap();
        assert_eq!(cells(&b[0], 0), ["\0", "2"]);
    }

    #[test]
    fn encodings() {
        let text = "name;città\n\"a;b\";é\n";
        let mut le = vec![0xFF, 0xFE];
        le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let o = CsvOptions {
            delimiter: ";".into(),
            ..CsvOptions::default()
        };
        let (h, b) = read_all(&le, &o).unwrap();
        assert_eq!(h, ["name", "città"]);
        assert_eq!(cells(&b[0], 0), ["a;b", "é"]);
        let o16 = CsvOptions {
            encoding: "utf-16".into(),
            ..o.clone()
        };
        assert_eq!(read_all(&le, &o16).unwrap().0, ["name", "città"]);
        let latin: Vec<u8> = "x\n\u{e9}\u{80}\n"
            .chars()
            .map(|c| c as u32 as u8)
            .collect();
        let ol = CsvOptions {
            encoding: "latin-1".into(),
            ..CsvOptions::default()
        };
        let (_, b) = read_all(&latin, &ol).unwrap();
        assert_eq!(cells(&b[0], 0), ["é\u{80}"]);
        let bad = CsvOptions {
            encoding: "klingon".into(),
            ..CsvOptions::default()
        };
        assert!(read_all(b"a\n", &bad)
            .unwrap_err()
            .to_string()
            .contains("unknown encoding"));
        let odd = [0xFF, 0xFE, b'a', 0, b'\n', 0, b'b'];
        assert!(read_all(&odd, &CsvOptions::default())
            .unwrap_err()
            .to_string()
            .contains("invalid utf-16"));
    }

    #[test]
    fn options_are_checked() {
        for o in [
            CsvOptions {
                delimiter: "ab".into(),
                ..CsvOptions::default()
            },
            CsvOptions {
                delimiter: "\n".into(),
                ..CsvOptions::default()
            },
            CsvOptions {
                quote: ",".into(),
                ..CsvOptions::default()
            },
            CsvOptions {
                batch_rows: 0,
                ..CsvOptions::default()
            },
        ] {
            assert!(matches!(read_all(b"a\n", &o), Err(DataError::Config(_))));
        }
        let noq = CsvOptions {
            quote: String::new(),
            ..CsvOptions::default()
        };
        let (_, b) = read_all(b"a,b\n\"x,y\n", &noq).unwrap();
        assert_eq!(cells(&b[0], 0), ["\"x", "y"]);
    }

    #[test]
    fn count_breaks_pairs_crlf_across_chunks() {
        let mut cr = false;
        assert_eq!(count_breaks(b"a\r", &mut cr), 1);
        assert_eq!(count_breaks(b"\nb\n\r\r\n", &mut cr), 3);
    }
}
