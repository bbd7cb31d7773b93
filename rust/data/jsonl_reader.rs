//! Streaming JSON Lines reader: one JSON object a line, parsed with serde_json into record
//! batches (values as `json_value` decides), no Python per line. A line that is one flat object
//! without escapes is scanned by `jsonl_flat` instead (same values; anything else, and every
//! reject's reason, comes from serde_json). A column is text, integers or floats while its
//! values are all of that kind (and NULLs), else a column of values.
//!
//! Columns are the union of the keys of the file's valid objects in first-seen order, found by
//! a first pass over the (decompressed) input that parses keys only; a line is fully checked
//! in that pass only when it brings a key not seen before, so a malformed line never adds a
//! column. A key that cannot be a column name (empty, a NUL byte, longer than 255 bytes,
//! `_tc_file_id` in any case, or differing only in ASCII case from an earlier key) is not a
//! column: every record holding it is rejected (rule `json`, naming the key and why).
//!
//! Records, as the Python loader decided them:
//! * a line of ASCII whitespace only is not a record (not counted, its line number is);
//! * a UTF-8 BOM at the start of the input is skipped; lines end at LF, trailing CRs dropped;
//! * not valid JSON (invalid UTF-8 and a truncated last line included), not an object, or `{}`:
//!   a rejected record (rule `json`) with its line number and the reason;
//! * a line longer than `max_line_bytes`: rejected (rule `line-length`) without being held;
//! * duplicate keys: the last value wins; a missing key is NULL.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::batch::{Column, RecordBatch, RejectInfo, TextCol, Value};
use super::error::DataError;
use super::input::{self, Compression};
use super::json_value::value_of;
use super::jsonl_flat::{keys_known, scan_line, KeyOrder, Slot};

/// Reader options (the Python keyword arguments).
#[derive(Debug, Clone)]
pub struct JsonlOptions {
    pub batch_rows: usize,
    pub max_line_bytes: usize,
    /// How the raw text of a rejected line is decoded (JSON itself is always UTF-8).
    pub encoding: String,
    /// None: detect it from the content's magic bytes.
    pub compression: Option<Compression>,
}

impl Default for JsonlOptions {
    fn default() -> Self {
        JsonlOptions {
            batch_rows: 10_000,
            max_line_bytes: 16 * 1024 * 1024,
            encoding: "utf-8".into(),
            compression: None,
        }
    }
}

/// A batch also ends when its lines hold this much text.
const BATCH_BYTES: usize = 16 * 1024 * 1024;
const MAX_NAME_BYTES: usize = 255;
const FILE_ID_COLUMN: &str = "_tc_file_id";

/// One line of the input.
enum Line {
    Eof,
    /// A line (in the reader's buffer, without its LF) and the bytes it used.
    Text(u64),
    /// A line longer than the limit, skipped: the bytes it used.
    TooLong(u64),
}

/// Read one line into `buf` (cleared), holding at most `max + 1` bytes of it.
fn read_line(input: &mut dyn BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<Line> {
    buf.clear();
    let mut used = 0u64;
    let mut too_long = false;
    loop {
        let avail = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(match (used, too_long) {
                (0, _) => Line::Eof,
                (_, true) => Line::TooLong(used),
                _ => Line::Text(used),
            });
        }
        let (take, done) = match memchr::memchr(b'\n', avail) {
            Some(k) => (k + 1, true),
            None => (avail.len(), false),
        };
        let content = if done { take - 1 } else { take };
        if !too_long {
            if buf.len() + content > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&avail[..content]);
            }
        }
        input.consume(take);
        used += take as u64;
        if done {
            return Ok(if too_long {
                Line::TooLong(used)
            } else {
                Line::Text(used)
            });
        }
    }
}

/// A line of ASCII whitespace only (Python's `bytes.isspace`) is not a record.
fn is_blank(line: &[u8]) -> bool {
    line.iter()
        .all(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c'))
}

fn trim_cr(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && line[end - 1] == b'\r' {
        end -= 1;
    }
    &line[..end]
}

/// Why `name` cannot be a column name (see `tallyclerk.names.column_name_problem`).
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("an empty name".into())
    } else if name.contains('\0') {
        Some("a NUL byte in the name".into())
    } else if name.len() > MAX_NAME_BYTES {
        Some(format!("longer than {MAX_NAME_BYTES} characters"))
    } else if name.to_lowercase() == FILE_ID_COLUMN {
        Some(format!("{FILE_ID_COLUMN} is tallyclerk's own column"))
    } else {
        None
    }
}

/// A string as Python's `repr` writes it (for reasons naming a key).
pub fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        let u = c as u32;
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            _ if u < 0x20 || (0x7f..=0xa0).contains(&u) || u == 0xad => {
                out.push_str(&format!("\\x{u:02x}"));
            }
            _ if matches!(u, 0x1680 | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x2064
                | 0x3000 | 0xfeff) =>
            {
                out.push_str(&format!("\\u{u:04x}"));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// A key: borrowed from the line unless it holds escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v.to_string()))
    }
}

/// What the top-level JSON value of a line was.
enum Top {
    Object(usize),
    Other(&'static str),
}

/// Visits a line's top-level value, handing each key and its raw value to `on_pair`.
struct LineVisitor<F>(F);

impl<'de, F> Visitor<'de> for LineVisitor<F>
where
    F: FnMut(std::borrow::Cow<'de, str>, &'de RawValue) -> Result<(), String>,
{
    type Value = Top;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Top, A::Error> {
        let mut n = 0;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let raw: &'de RawValue = map.next_value()?;
            (self.0)(key, raw).map_err(de::Error::custom)?;
            n += 1;
        }
        Ok(Top::Object(n))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Top::Other("list"))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Top, E> {
        Ok(Top::Other("bool"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Top, E> {
        Ok(Top::Other("int"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Top, E> {
        Ok(Top::Other("int"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Top, E> {
        Ok(Top::Other("float"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Top, E> {
        Ok(Top::Other("str"))
    }
    fn visit_unit<E>(self) -> Result<Top, E> {
        Ok(Top::Other("null"))
    }
}

/// Parse one line: its top-level value, each key and raw value given to `on_pair`.
fn parse_line<'de, F>(text: &'de str, on_pair: F) -> Result<Top, String>
where
    F: FnMut(std::borrow::Cow<'de, str>, &'de RawValue) -> Result<(), String>,
{
    let mut de = serde_json::Deserializer::from_str(text);
    let top = de
        .deserialize_any(LineVisitor(on_pair))
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(top)
}

/// The columns of a file: its valid objects' keys, and the keys that cannot be columns.
#[derive(Default)]
struct Keys {
    columns: Vec<String>,
    index: HashMap<String, usize>,
    bad: HashMap<String, String>,
    /// ASCII-lowercased name -> the first spelling seen.
    folded: HashMap<String, String>,
    /// The columns as lines spell them (`jsonl_flat`).
    order: KeyOrder,
    /// Flat lines of known keys are skipped by `jsonl_flat::keys_known` (off only in tests:
    /// then `top_keys` looks at every line).
    flat: bool,
}

impl Keys {
    fn known(&self, key: &str) -> bool {
        self.index.contains_key(key) || self.bad.contains_key(key)
    }

    fn add(&mut self, key: &str) {
        if self.known(key) {
            return;
        }
        let mut problem = name_problem(key);
        if problem.is_none() {
            let first = self
                .folded
                .entry(key.to_ascii_lowercase())
                .or_insert_with(|| key.to_string());
            if first != key {
                problem = Some(format!(
                    "differs only in letter case from the key {}",
                    py_repr(first)
                ));
            }
        }
        match problem {
            Some(p) => {
                self.bad.insert(key.to_string(), p);
            }
            None => {
                self.index.insert(key.to_string(), self.columns.len());
                self.columns.push(key.to_string());
                self.order.push(key);
            }
        }
    }

    /// One line of the first pass: keys only (a quick scan), unless the line brings a new key
    /// or the scan cannot tell: then serde_json checks the whole line before its keys count.
    fn scan(&mut self, line: &[u8]) {
        if self.flat && keys_known(line, &self.order, |k| self.index.get(k).copied()).is_some() {
            return; // a flat object of known keys: nothing to add
        }
        let mut new = false;
        let mut pos = 0;
        let quick = top_keys(line, |k| {
            // keys usually come in the columns' order: no hashing then
            if self.columns.get(pos).is_some_and(|c| c.as_bytes() == k) {
                pos += 1;
            } else {
                new |= std::str::from_utf8(k).map_or(true, |k| !self.known(k));
            }
        });
        if quick.is_some() && !new {
            return; // every key known (or not an object): nothing to add
        }
        let Ok(text) = std::str::from_utf8(line) else {
            return;
        };
        let mut keys = Vec::new();
        let full = parse_line(text, |k, raw| {
            value_of(raw.get(), 1)?;
            keys.push(k);
            Ok(())
        });
        if let Ok(Top::Object(_)) = full {
            for k in keys {
                self.add(&k);
            }
        }
    }
}

/// The raw keys of a line's top-level object, for the first pass: Some(()) when the line was
/// scanned (its keys given to `on_key`, or it is no object), None when the quick scan cannot
/// tell (a key with escapes, something unexpected). Exact for valid JSON; a malformed line
/// may yield anything, which is why a new key is only counted after a full parse.
fn top_keys(b: &[u8], mut on_key: impl FnMut(&[u8])) -> Option<()> {
    let ws = |i: &mut usize| {
        while matches!(b.get(*i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            *i += 1;
        }
    };
    // the end of the string starting at `i` (after its opening quote): past the closing quote
    let string_end = |mut i: usize| -> Option<usize> {
        loop {
            let k = memchr::memchr2(b'"', b'\\', &b[i..])?;
            if b[i + k] == b'"' {
                return Some(i + k + 1);
            }
            i += k + 2;
            if i > b.len() {
                return None;
            }
        }
    };
    let mut i = 0;
    ws(&mut i);
    if b.get(i) != Some(&b'{') {
        return Some(()); // not an object: it brings no key
    }
    i += 1;
    ws(&mut i);
    if b.get(i) == Some(&b'}') {
        return Some(());
    }
    loop {
        ws(&mut i);
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let end = string_end(i + 1)?;
        let key = &b[i + 1..end - 1];
        if memchr::memchr(b'\\', key).is_some() {
            return None;
        }
        on_key(key);
        i = end;
        ws(&mut i);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i += 1;
        // skip the value: strings whole, brackets counted
        let mut depth = 0usize;
        loop {
            match *b.get(i)? {
                b'"' => i = string_end(i + 1)?,
                b'{' | b'[' => {
                    depth += 1;
                    i += 1;
                }
                b'}' | b']' if depth > 0 => {
                    depth -= 1;
                    i += 1;
                }
                b',' | b'}' if depth == 0 => break,
                _ => i += 1,
            }
        }
        if b[i] == b'}' {
            return Some(());
        }
        i += 1;
    }
}

/// How the raw text of a line is decoded.
#[derive(Clone, Copy)]
enum RawDecode {
    Utf8,
    Latin1,
    Other(&'static encoding_rs::Encoding),
}

impl RawDecode {
    fn parse(label: &str) -> Result<Self, DataError> {
        let l = label.trim().to_ascii_lowercase().replace('_', "-");
        Ok(match l.as_str() {
            "utf-8" | "utf8" | "utf-8-sig" | "u8" => RawDecode::Utf8,
            "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" | "l1" => RawDecode::Latin1,
            _ => match encoding_rs::Encoding::for_label(l.as_bytes()) {
                Some(e) if e != encoding_rs::REPLACEMENT => RawDecode::Other(e),
                _ => {
                    return Err(DataError::Config(format!(
                        "unknown encoding {label:?} (use utf-8, latin-1, cp1252, ...)"
                    )))
                }
            },
        })
    }

    fn decode(self, b: &[u8]) -> std::borrow::Cow<'_, str> {
        match self {
            RawDecode::Utf8 => String::from_utf8_lossy(b),
            RawDecode::Latin1 => b.iter().map(|&c| char::from(c)).collect(),
            RawDecode::Other(e) => e.decode_without_bom_handling(b).0,
        }
    }
}

/// A column being built: NULLs until its first value, then text (in one arena, as the CSV
/// reader's) while the values are strings, integers while they are integers, floats while they
/// are floats; any other mix makes it a column of values. A typed column reads cell by cell as
/// the column of values would ([`Column::get`]), so the choice only changes speed.
enum ColBuilder {
    Nulls { rows: usize, cap: usize },
    Text(TextCol),
    Int(Vec<Option<i64>>),
    Real(Vec<Option<f64>>),
    Any(Vec<Value>),
}

impl ColBuilder {
    fn new(cap: usize) -> Self {
        ColBuilder::Nulls { rows: 0, cap }
    }

    #[inline(always)]
    fn push(&mut self, slot: Slot, line: &str) {
        match (&mut *self, slot) {
            (ColBuilder::Nulls { rows, .. }, Slot::Null) => *rows += 1,
            (ColBuilder::Text(t), Slot::Null) => t.push(None),
            (ColBuilder::Text(t), Slot::Span(a, b)) => t.push(Some(line.get(a..b).unwrap_or(""))),
            (ColBuilder::Text(t), Slot::Val(Value::Text(s))) => t.push(Some(&s)),
            (ColBuilder::Int(v), Slot::Null) => v.push(None),
            (ColBuilder::Int(v), Slot::Val(Value::Int(x))) => v.push(Some(x)),
            (ColBuilder::Real(v), Slot::Null) => v.push(None),
            (ColBuilder::Real(v), Slot::Val(Value::Real(x))) => v.push(Some(x)),
            (ColBuilder::Any(v), Slot::Null) => v.push(Value::Null),
            (ColBuilder::Any(v), Slot::Span(a, b)) => {
                v.push(Value::Text(line.get(a..b).unwrap_or("").into()));
            }
            (ColBuilder::Any(v), Slot::Val(x)) => v.push(x),
            (_, slot) => self.push_other(slot, line),
        }
    }

    /// [`ColBuilder::push`] of a value that changes the column's kind.
    #[cold]
    #[inline(never)]
    fn push_other(&mut self, slot: Slot, line: &str) {
        match (&mut *self, slot) {
            (ColBuilder::Nulls { rows, cap }, slot) => {
                let (rows, cap) = (*rows, (*cap).max(*rows + 1));
                *self = match &slot {
                    Slot::Span(..) | Slot::Val(Value::Text(_)) => {
                        let mut t = TextCol::with_capacity(cap, 16 * cap);
                        (0..rows).for_each(|_| t.push(None));
                        ColBuilder::Text(t)
                    }
                    Slot::Val(Value::Int(_)) => ColBuilder::Int(nulls(rows, cap)),
                    Slot::Val(Value::Real(_)) => ColBuilder::Real(nulls(rows, cap)),
                    _ => ColBuilder::Any(vec![Value::Null; rows]),
                };
                self.push(slot, line);
            }
            (_, slot) => {
                // a value of another kind: the column becomes one of values
                self.make_any();
                self.push(slot, line);
            }
        }
    }

    /// Turn the column into a column of values (the same cells).
    fn make_any(&mut self) {
        let values: Vec<Value> = match &*self {
            ColBuilder::Any(_) => return,
            ColBuilder::Nulls { rows, .. } => vec![Value::Null; *rows],
            ColBuilder::Text(t) => (0..t.len())
                .map(|i| t.get(i).map_or(Value::Null, |s| Value::Text(s.into())))
                .collect(),
            ColBuilder::Int(v) => v
                .iter()
                .map(|x| x.map_or(Value::Null, Value::Int))
                .collect(),
            ColBuilder::Real(v) => v
                .iter()
                .map(|x| x.map_or(Value::Null, Value::Real))
                .collect(),
        };
        let mut values = values;
        values.reserve(values.len() + 16);
        *self = ColBuilder::Any(values);
    }

    fn finish(self) -> Column {
        match self {
            ColBuilder::Nulls { rows, .. } => {
                let mut t = TextCol::with_capacity(rows, 0);
                (0..rows).for_each(|_| t.push(None));
                Column::Text(t)
            }
            ColBuilder::Text(t) => Column::Text(t),
            ColBuilder::Int(v) => Column::Int(v),
            ColBuilder::Real(v) => Column::Real(v),
            ColBuilder::Any(v) => Column::Any(v),
        }
    }
}

/// `rows` NULLs in a vector with room for `cap`.
fn nulls<T: Clone>(rows: usize, cap: usize) -> Vec<Option<T>> {
    let mut v = Vec::with_capacity(cap);
    v.resize(rows, None);
    v
}

/// Streams a JSON Lines file as [`RecordBatch`]es.
pub struct JsonlReader {
    path: String,
    input: Box<dyn BufRead + Send>,
    keys: Keys,
    buf: Vec<u8>,
    raw_decode: RawDecode,
    lines: u64,
    records_read: u64,
    consumed: u64,
    last_pos: u64,
    batch_rows: usize,
    max_line: usize,
    finished: bool,
    /// Flat lines are scanned by `jsonl_flat` with the columns' names in this order (None only
    /// in tests: every line through serde_json, the path the scanner is tested against).
    flat: Option<KeyOrder>,
}

/// Open the decompressed input and skip a UTF-8 BOM; returns the bytes skipped.
fn open_text(path: &str, opts: &JsonlOptions) -> Result<(Box<dyn BufRead + Send>, u64), DataError> {
    skip_bom(path, input::open_path(path, opts.compression)?.reader)
}

/// Skip a UTF-8 BOM at the start of `reader`; returns the bytes skipped.
fn skip_bom(
    path: &str,
    mut reader: Box<dyn BufRead + Send>,
) -> Result<(Box<dyn BufRead + Send>, u64), DataError> {
    let head = reader
        .fill_buf()
        .map_err(|e| DataError::source(path, None, format!("cannot read: {e}")))?;
    let bom = if head.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    reader.consume(bom);
    Ok((reader, bom as u64))
}

impl JsonlReader {
    /// Open `path` (possibly compressed, see `input`) and find its columns (a first pass).
    pub fn open(path: &str, opts: &JsonlOptions) -> Result<Self, DataError> {
        Self::open_with(path, opts, || open_text(path, opts), true)
    }

    /// A reader over text from `open` (called twice: the first pass, then the records),
    /// named `path` in errors and batches; `flat`: flat lines go through `jsonl_flat` (else
    /// every line through serde_json: what `jsonl_flat` is tested against). Never inlined: a
    /// symbol profiles can name (the first pass).
    #[inline(never)]
    fn open_with(
        path: &str,
        opts: &JsonlOptions,
        open: impl Fn() -> Result<(Box<dyn BufRead + Send>, u64), DataError>,
        flat: bool,
    ) -> Result<Self, DataError> {
        if opts.batch_rows == 0 || opts.max_line_bytes == 0 {
            return Err(DataError::Config(
                "batch_rows and max_line_bytes must be at least 1".into(),
            ));
        }
        let raw_decode = RawDecode::parse(&opts.encoding)?;
        let mut keys = Keys {
            flat,
            ..Keys::default()
        };
        let (mut first, _) = open()?;
        let mut buf = Vec::new();
        let mut lineno = 0u64;
        loop {
            let line = read_line(&mut *first, &mut buf, opts.max_line_bytes).map_err(|e| {
                DataError::source(path, Some(lineno + 1), format!("read error: {e}"))
            })?;
            lineno += 1;
            match line {
                Line::Eof => break,
                Line::TooLong(_) => {}
                Line::Text(_) if is_blank(&buf) => {}
                Line::Text(_) => keys.scan(trim_cr(&buf)),
            }
        }
        drop(first);
        let (input, bom) = open()?;
        Ok(JsonlReader {
            path: path.to_string(),
            input,
            buf,
            raw_decode,
            lines: 0,
            records_read: 0,
            consumed: bom,
            last_pos: 0,
            batch_rows: opts.batch_rows,
            max_line: opts.max_line_bytes,
            finished: false,
            flat: flat.then(|| std::mem::take(&mut keys.order)),
            keys,
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn columns(&self) -> &[String] {
        &self.keys.columns
    }

    /// Source bytes (of the decompressed text) read so far.
    pub fn bytes_read(&self) -> u64 {
        self.consumed
    }

    pub fn records_read(&self) -> u64 {
        self.records_read
    }

    /// The input is used up: the next batch is `None`.
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    pub fn batch_rows(&self) -> usize {
        self.batch_rows
    }

    pub fn set_batch_rows(&mut self, rows: usize) {
        self.batch_rows = rows.max(1);
    }

    /// A reader over bytes handed out by `reader()` (tests: reads in chosen chunk sizes;
    /// `flat` false: every line through serde_json).
    #[cfg(test)]
    pub(crate) fn from_reader<R: BufRead + Send + 'static>(
        path: &str,
        opts: &JsonlOptions,
        reader: impl Fn() -> R,
        flat: bool,
    ) -> Result<Self, DataError> {
        Self::open_with(path, opts, || skip_bom(path, Box::new(reader())), flat)
    }

    /// Parse one record into `slots` (one per column, all Null on entry); Err: why it is
    /// rejected (its slots are left Null).
    fn parse_record(&self, line: Result<&str, String>, slots: &mut [Slot]) -> Result<(), String> {
        let text = line.map_err(|e| format!("malformed JSON: str is not valid UTF-8: {e}"))?;
        let keys = &self.keys;
        if let Some(order) = &self.flat {
            let flat = scan_line(
                text.as_bytes(),
                order,
                |key| keys.index.get(key).copied(),
                |col, slot| slots[col] = slot,
            );
            if flat.is_some() {
                return Ok(());
            }
            for s in slots.iter_mut() {
                *s = Slot::Null;
            }
        }
        let mut bad: Option<String> = None;
        let mut pos = 0usize;
        let top = parse_line(text, |key, raw| {
            // keys usually come in the columns' order: try the next column first
            let col = match keys.columns.get(pos) {
                Some(c) if *c == key => Some(pos),
                _ => keys.index.get(key.as_ref()).copied(),
            };
            let raw = raw.get();
            let value = match raw.as_bytes() {
                // a string without escapes: where it is in the line (no copy, no allocation)
                [b'"', inner @ .., b'"'] if memchr::memchr(b'\\', inner).is_none() => {
                    // serde_json borrows raw values from the line: `raw` lies within `text`
                    match (raw.as_ptr() as usize).checked_sub(text.as_ptr() as usize) {
                        Some(at) if at + raw.len() <= text.len() => {
                            Slot::Span(at + 1, at + 1 + inner.len())
                        }
                        _ => Slot::Val(Value::Text(raw[1..raw.len() - 1].to_string())),
                    }
                }
                _ => match value_of(raw, 1)? {
                    Value::Null => Slot::Null,
                    v => Slot::Val(v),
                },
            };
            match col {
                Some(c) => {
                    slots[c] = value;
                    pos = c + 1;
                }
                None if bad.is_none() => bad = Some(key.into_owned()),
                None => {}
            }
            Ok(())
        });
        let reason = match top {
            Err(e) => format!("malformed JSON: {e}"),
            Ok(Top::Other(kind)) => format!("not a JSON object (a JSON {kind})"),
            Ok(Top::Object(0)) => "an empty JSON object (no keys)".into(),
            Ok(Top::Object(_)) => match bad {
                None => return Ok(()),
                Some(key) => {
                    let short: String = key.chars().take(80).collect();
                    match keys.bad.get(&key) {
                        Some(why) => {
                            format!("key {} cannot be a column name: {why}", py_repr(&short))
                        }
                        None => format!(
                            "key {} was not in the file when its columns were read (the \
                             file changed while it was loaded)",
                            py_repr(&short)
                        ),
                    }
                }
            },
        };
        for s in slots.iter_mut() {
            *s = Slot::Null;
        }
        Err(reason)
    }

    /// The next batch, or None at the end of the input.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, DataError> {
        let n = self.keys.columns.len();
        let cap = self.batch_rows.min(65_536);
        let mut cols: Vec<ColBuilder> = (0..n).map(|_| ColBuilder::new(cap)).collect();
        let mut raws = TextCol::with_capacity(cap, 0);
        let (mut numbers, mut lines) = (Vec::with_capacity(cap), Vec::with_capacity(cap));
        let mut rejects: Vec<(usize, RejectInfo)> = Vec::new();
        let mut slots = vec![Slot::Null; n];
        let mut text_bytes = 0usize;
        let mut buf = std::mem::take(&mut self.buf);
        while !self.finished && numbers.len() < self.batch_rows && text_bytes < BATCH_BYTES {
            let line = read_line(&mut *self.input, &mut buf, self.max_line).map_err(|e| {
                DataError::source(&self.path, Some(self.lines + 1), format!("read error: {e}"))
            });
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    self.buf = buf;
                    return Err(e);
                }
            };
            let verdict = match line {
                Line::Eof => {
                    self.finished = true;
                    break;
                }
                Line::TooLong(used) => {
                    self.lines += 1;
                    self.consumed += used;
                    raws.push(Some(""));
                    for col in &mut cols {
                        col.push(Slot::Null, "");
                    }
                    Err((
                        "line-length",
                        format!("line longer than {} bytes", self.max_line),
                    ))
                }
                Line::Text(used) => {
                    self.lines += 1;
                    self.consumed += used;
                    if is_blank(&buf) {
                        continue;
                    }
                    let line = trim_cr(&buf);
                    text_bytes += used as usize;
                    let text = std::str::from_utf8(line).map_err(|e| e.to_string());
                    match (&text, self.raw_decode) {
                        (Ok(t), RawDecode::Utf8) => raws.push(Some(t)),
                        _ => raws.push(Some(&self.raw_decode.decode(line))),
                    }
                    let parsed = self.parse_record(text.clone(), &mut slots);
                    let line = text.as_deref().unwrap_or("");
                    for (col, slot) in cols.iter_mut().zip(slots.iter_mut()) {
                        col.push(std::mem::replace(slot, Slot::Null), line);
                    }
                    parsed.map_err(|r| ("json", r))
                }
            };
            self.records_read += 1;
            if let Err((rule, reason)) = verdict {
                let raw = raws.get(raws.len() - 1).unwrap_or_default().to_string();
                let info = RejectInfo {
                    column: None,
                    rule: rule.into(),
                    reason,
                    raw: Some(raw),
                    masked: false,
                };
                rejects.push((numbers.len(), info));
            }
            numbers.push(self.records_read);
            lines.push(self.lines);
        }
        self.buf = buf;
        let pos = self.consumed;
        if numbers.is_empty() {
            return Ok(None);
        }
        let mut batch = RecordBatch::from_columns(
            self.keys.columns.clone(),
            cols.into_iter().map(ColBuilder::finish).collect(),
            numbers,
            lines,
            raws,
            rejects,
        );
        batch.bytes = pos - self.last_pos;
        batch.source = Some(self.path.clone());
        self.last_pos = pos;
        Ok(Some(batch))
    }
}

#[cfg(test)]
#[path = "jsonl_flat_tests.rs"]
mod flat_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::batch::CellRef;
    use std::io::Write;

    fn read_all(bytes: &[u8], opts: &JsonlOptions) -> (Vec<String>, Vec<RecordBatch>) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        let mut r = JsonlReader::open(f.path().to_str().unwrap(), opts).unwrap();
        let mut out = Vec::new();
        while let Some(b) = r.next_batch().unwrap() {
            out.push(b);
        }
        assert_eq!(r.bytes_read(), bytes.len() as u64);
        (r.columns().to_vec(), out)
    }

    #[test]
    fn records_rejects_lines_and_values() {
        let data = "\u{feff}{\"a\": 1, \"b\": {\"n\": [1,2]}}\r\n\n  \n{\"a\": 18446744073709551615}\n\
                    {\"a\": 1e400, \"c\": 1}\n[]\n{}\n{\"a\": true, \"a\": \"x\", \"b\": 2.5}\n{\"a\": 2";
        let (cols, batches) = read_all(data.as_bytes(), &JsonlOptions::default());
        assert_eq!(cols, ["a", "b"]); // "c" is only in a malformed line
        let b = &batches[0];
        assert_eq!(b.record_numbers, [1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(b.lines, [1, 4, 5, 6, 7, 8, 9]);
        assert_eq!(b.columns[1].get(0), CellRef::Text("{\"n\":[1,2]}"));
        assert_eq!(b.columns[0].get(1), CellRef::Text("18446744073709551615"));
        assert_eq!(b.columns[0].get(5), CellRef::Text("x"));
        assert_eq!(b.columns[1].get(5), CellRef::Real(2.5));
        let rules: Vec<(usize, String)> = b.rejects().map(|(i, r)| (i, r.reason.clone())).collect();
        assert_eq!(rules.iter().map(|r| r.0).collect::<Vec<_>>(), [2, 3, 4, 6]);
        assert!(rules[1].1.contains("a JSON list"));
        assert!(rules[2].1.contains("empty JSON object"));
        assert_eq!(b.raw(6).unwrap(), "{\"a\": 2");
    }

    #[test]
    fn long_lines_and_bad_keys() {
        let o = JsonlOptions {
            max_line_bytes: 15,
            batch_rows: 2,
            ..JsonlOptions::default()
        };
        let data = b"{\"a\": 1}\n{\"a\": \"xxxxxxxxxx\"}\n{\"A\": 2}\n{\"\": 3, \"a\": 4}\n";
        let (cols, batches) = read_all(data, &o);
        assert_eq!(cols, ["a"]);
        assert_eq!(batches.len(), 2);
        let r = batches[0].reject_info(1).unwrap();
        assert_eq!(
            (r.rule.as_str(), r.reason.as_str()),
            ("line-length", "line longer than 15 bytes")
        );
        let r = batches[1].reject_info(0).unwrap();
        assert!(
            r.reason.contains("letter case from the key 'a'"),
            "{}",
            r.reason
        );
        assert!(batches[1]
            .reject_info(1)
            .unwrap()
            .reason
            .contains("an empty name"));
    }

    #[test]
    fn quick_key_scan() {
        let keys = |line: &str| {
            let mut out = Vec::new();
            let r = top_keys(line.as_bytes(), |k| {
                out.push(String::from_utf8_lossy(k).into_owned())
            });
            r.map(|()| out)
        };
        assert_eq!(
            keys(r#" { "a" : {"x": [1, "}", {"y": "\"]"}]}, "b":"q\"", "c" :null } "#),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(keys("[1]"), Some(vec![]));
        assert_eq!(keys("{}"), Some(vec![]));
        assert_eq!(keys(r#"{"a\u0041": 1}"#), None);
        assert_eq!(keys(r#"{"a": 1"#), None);
    }

    #[test]
    fn python_repr() {
        assert_eq!(py_repr("a"), "'a'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("a\0\n'\""), "'a\\x00\\n\\'\"'");
    }
}
