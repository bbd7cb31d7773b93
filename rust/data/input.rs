//! Where the data path's bytes come from: ONE place that opens an input, recognises its
//! compression from the content's magic bytes (or takes a forced one) and wraps it in the
//! matching streaming decoder. Every reader (CSV, the Python `InputStream` the JSONL loader and
//! plugins read, the content fingerprint) gets a plain `BufRead` of the decompressed text, so a
//! parser never knows whether its bytes were compressed, nor where they came from: any
//! `Read + Send` (a file today, a remote object's stream tomorrow) goes through [`wrap`].
//!
//! Decoders (all streaming, memory bounded by their window/block size, no system libraries):
//! gzip via flate2 on zlib-rs (pure Rust), bzip2 via libbz2-rs-sys (pure Rust), xz via liblzma
//! built from its vendored C source, zstd via zstd-sys built from its vendored C source.
//! Concatenated members/streams/frames are read as one text (as `gzip -d` does).
//!
//! A corrupt or truncated archive is an `InvalidData` read error whose message names the
//! format ("gzip data is corrupt or truncated: ..."); the CSV reader turns it into a
//! `SourceError` for the file, and the caller's one transaction per file rolls it back.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};

use super::error::DataError;

/// Read buffer of the raw input and of the decoded text.
pub const READ_BUF: usize = 256 * 1024;

/// A compression format of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl Compression {
    /// `auto` (None: detect from the content), `none`, `gzip`/`gz`, `bzip2`/`bz2`, `xz`,
    /// `zstd`/`zst`.
    pub fn parse(name: &str) -> Result<Option<Compression>, DataError> {
        Ok(Some(match name.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => return Ok(None),
            "none" => Compression::None,
            "gzip" | "gz" => Compression::Gzip,
            "bzip2" | "bz2" => Compression::Bzip2,
            "xz" => Compression::Xz,
            "zstd" | "zst" => Compression::Zstd,
            _ => {
                return Err(DataError::Config(format!(
                    "unknown compression {name:?} (use auto, none, gzip, bzip2, xz or zstd)"
                )))
            }
        }))
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }

    /// The format whose magic number starts `head` (None when none does).
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1F, 0x8B]) {
            Compression::Gzip
        } else if head.len() >= 4 && head.starts_with(b"BZh") && (b'1'..=b'9').contains(&head[3]) {
            Compression::Bzip2
        } else if head.starts_with(&[0xFD, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else if head.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// The decompressed text of an input, and the compression it was read with.
pub struct Input {
    pub reader: Box<dyn BufRead + Send>,
    pub compression: Compression,
}

/// Open the file at `path` (`compression` None: detect it from the content).
pub fn open_path(path: &str, compression: Option<Compression>) -> Result<Input, DataError> {
    let src_err = |reason: String| DataError::source(path, None, reason);
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => src_err("no such file".into()),
        _ => src_err(format!("cannot open: {e}")),
    })?;
    if meta.is_dir() {
        return Err(src_err("is a directory, not a file".into()));
    }
    let file = File::open(path).map_err(|e| src_err(format!("cannot open: {e}")))?;
    wrap(path, Box::new(file), compression)
}

/// Wrap any byte stream (`name` is used in errors): read its first bytes, decide the
/// compression, and return the decompressed text.
pub fn wrap(
    name: &str,
    mut raw: Box<dyn Read + Send>,
    compression: Option<Compression>,
) -> Result<Input, DataError> {
    let mut head = Vec::with_capacity(8);
    while head.len() < 6 {
        let mut b = [0u8; 6];
        let want = 6 - head.len();
        match raw.read(&mut b[..want]) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&b[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(DataError::source(name, None, format!("cannot read: {e}"))),
        }
    }
    let found = Compression::sniff(&head);
    let compression = match compression {
        None => found,
        Some(Compression::None) => Compression::None,
        Some(c) if c == found => c,
        Some(c) if head.is_empty() => c,
        Some(c) => {
            return Err(DataError::source(
                name,
                None,
                format!(
                    "not {} data: the file does not start with {}'s magic number \
                     (use compression=\"auto\" to detect it)",
                    c.name(),
                    c.name()
                ),
            ))
        }
    };
    let stream = BufReader::with_capacity(READ_BUF, Cursor::new(head).chain(raw));
    let decoded: Box<dyn Read + Send> = match compression {
        Compression::None => {
            return Ok(Input {
                reader: Box::new(stream),
                compression,
            })
        }
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(stream)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(stream)),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(stream)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(stream)
                .map_err(|e| DataError::source(name, None, format!("zstd: {e}")))?,
        ),
    };
    Ok(Input {
        reader: Box::new(BufReader::with_capacity(
            READ_BUF,
            Checked {
                inner: decoded,
                format: compression.name(),
            },
        )),
        compression,
    })
}

/// Gives a decoder's errors one form: `InvalidData` "<format> data is corrupt or truncated:
/// <decoder's reason>" (a plain read error of the underlying stream keeps its kind).
struct Checked {
    inner: Box<dyn Read + Send>,
    format: &'static str,
}

impl Read for Checked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::InvalidData
                            | io::ErrorKind::InvalidInput
                            | io::ErrorKind::UnexpectedEof
                            | io::ErrorKind::Other
                    ) =>
                {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} data is corrupt or truncated: {e}", self.format),
                    ))
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const TEXT: &[u8] = b"id,name\n1,a\n2,b\n3,c\n";

    fn compress(c: Compression, data: &[u8]) -> Vec<u8> {
        match c {
            Compression::None => data.to_vec(),
            Compression::Gzip => {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Bzip2 => {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Zstd => {
                // with the content checksum, as the zstd command writes by default (without
                // it a flipped byte may decode to other text: nothing can tell)
                let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
                e.include_checksum(true).unwrap();
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
        }
    }

    fn read_all(bytes: Vec<u8>, c: Option<Compression>) -> io::Result<Vec<u8>> {
        let mut input = wrap("t", Box::new(Cursor::new(bytes)), c).map_err(io::Error::other)?;
        let mut out = Vec::new();
        input.reader.read_to_end(&mut out)?;
        Ok(out)
    }

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Bzip2,
        Compression::Xz,
        Compression::Zstd,
    ];

    #[test]
    fn detects_and_decodes_every_format() {
        for c in ALL {
            let bytes = compress(c, TEXT);
            assert_eq!(Compression::sniff(&bytes), c);
            assert_eq!(read_all(bytes.clone(), None).unwrap(), TEXT, "{c:?}");
            assert_eq!(read_all(bytes, Some(c)).unwrap(), TEXT, "{c:?} forced");
        }
    }

    #[test]
    fn concatenated_members_are_one_text() {
        for c in ALL {
            let mut bytes = compress(c, b"id\n1\n");
            bytes.extend(compress(c, b"2\n"));
            assert_eq!(read_all(bytes, None).unwrap(), b"id\n1\n2\n", "{c:?}");
        }
    }

    #[test]
    fn truncated_or_corrupt_archives_are_errors() {
        let big: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("{i},{}\n", i * 7919 % 1000).into_bytes())
            .collect();
        for c in &ALL[1..] {
            let bytes = compress(*c, &big);
            for cut in [bytes.len() / 2, bytes.len() - 1] {
                let err = read_all(bytes[..cut].to_vec(), None).unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{c:?} cut at {cut}");
                assert!(err.to_string().contains("corrupt or truncated"), "{err}");
            }
            let mut bad = bytes.clone();
            let mid = bad.len() / 2;
            for b in &mut bad[mid..mid + 64] {
                *b ^= 0x5A;
            }
            assert!(read_all(bad, None).is_err(), "{c:?} corrupt");
        }
    }

    #[test]
    fn forced_compression_must_match_the_content() {
        let err = read_all(TEXT.to_vec(), Some(Compression::Gzip)).unwrap_err();
        assert!(err.to_string().contains("not gzip data"), "{err}");
        let gz = compress(Compression::Gzip, TEXT);
        assert_eq!(read_all(gz.clone(), Some(Compression::None)).unwrap(), gz);
    }

    #[test]
    fn parse_names() {
        assert_eq!(Compression::parse("auto").unwrap(), None);
        assert_eq!(Compression::parse("GZ").unwrap(), Some(Compression::Gzip));
        assert_eq!(Compression::parse("zst").unwrap(), Some(Compression::Zstd));
        assert!(Compression::parse("lz4").is_err());
    }

    #[test]
    fn short_inputs() {
        assert_eq!(read_all(Vec::new(), None).unwrap(), b"");
        assert_eq!(read_all(b"a\n".to_vec(), None).unwrap(), b"a\n");
    }
}
