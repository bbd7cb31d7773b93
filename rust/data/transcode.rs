//! Strict transcoding of non-UTF-8 sources to UTF-8, streaming (a `BufRead` over the decoded
//! bytes). Malformed input is an error, never a silent U+FFFD.
//!
//! * `latin-1` (and its aliases) is ISO-8859-1 exactly as Python decodes it: byte n is U+00nn.
//! * Every other label goes through `encoding_rs` (WHATWG labels: `utf-16`, `utf-16le`,
//!   `utf-16be`, `cp1252`, `shift_jis`, ...). A byte order mark at the start overrides the
//!   label and is removed (so a UTF-16 file with a BOM reads right as "utf-16" of either
//!   endianness); "utf-16" without a BOM is little-endian.

use std::io::{self, BufRead, Read};

use encoding_rs::{Decoder, DecoderResult, Encoding};

enum Decode {
    Latin1,
    Whatwg(Decoder),
}

pub(crate) struct Transcoder<R: Read> {
    inner: R,
    decode: Decode,
    name: String,
    inbuf: Vec<u8>,
    in_start: usize,
    in_end: usize,
    eof: bool,
    finished: bool,
    out: Vec<u8>,
    out_start: usize,
    out_end: usize,
    /// Source bytes read from `inner` so far.
    pub src_read: u64,
}

const IN_CAP: usize = 128 * 1024;

impl<R: Read> Transcoder<R> {
    pub(crate) fn latin1(inner: R) -> Self {
        Self::new(inner, Decode::Latin1, "latin-1".into())
    }

    pub(crate) fn whatwg(inner: R, enc: &'static Encoding) -> Self {
        Self::new(
            inner,
            Decode::Whatwg(enc.new_decoder()),
            enc.name().to_lowercase(),
        )
    }

    fn new(inner: R, decode: Decode, name: String) -> Self {
        Transcoder {
            inner,
            decode,
            name,
            inbuf: vec![0; IN_CAP],
            in_start: 0,
            in_end: 0,
            eof: false,
            finished: false,
            out: vec![0; IN_CAP * 3 + 16],
            out_start: 0,
            out_end: 0,
            src_read: 0,
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        self.out_start = 0;
        self.out_end = 0;
        while self.out_end == 0 && !self.finished {
            if self.in_start == self.in_end && !self.eof {
                let n = loop {
                    match self.inner.read(&mut self.inbuf) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                };
                self.in_start = 0;
                self.in_end = n;
                self.src_read += n as u64;
                self.eof = n == 0;
            }
            let input = &self.inbuf[self.in_start..self.in_end];
            match &mut self.decode {
                Decode::Latin1 => {
                    let mut w = 0;
                    for &b in input {
                        if b < 0x80 {
                            self.out[w] = b;
                            w += 1;
                        } else {
                            self.out[w] = 0xC0 | (b >> 6);
                            self.out[w + 1] = 0x80 | (b & 0x3F);
                            w += 2;
                        }
                    }
                    self.in_start = self.in_end;
                    self.out_end = w;
                    if self.eof {
                        self.finished = true;
                    }
                }
                Decode::Whatwg(dec) => {
                    let (res, read, written) =
                        dec.decode_to_utf8_without_replacement(input, &mut self.out, self.eof);
                    self.in_start += read;
                    self.out_end = written;
                    match res {
                        DecoderResult::InputEmpty => {
                            if self.eof {
                                self.finished = true;
                            }
                        }
                        DecoderResult::OutputFull => {}
                        DecoderResult::Malformed(_, _) => {
                            let at = self.src_read - (self.in_end - self.in_start) as u64;
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!("invalid {} data near byte offset {at}", self.name),
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Transcoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Transcoder<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.out_start == self.out_end {
            self.refill()?;
        }
        Ok(&self.out[self.out_start..self.out_end])
    }

    fn consume(&mut self, amt: usize) {
        self.out_start = (self.out_start + amt).min(self.out_end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(mut t: impl Read) -> io::Result<String> {
        let mut s = String::new();
        t.read_to_string(&mut s)?;
        Ok(s)
    }

    #[test]
    fn latin1_is_iso_8859_1() {
        let bytes: Vec<u8> = (0u8..=255).collect();
        let s = all(Transcoder::latin1(&bytes[..])).unwrap();
        let expect: String = (0u32..=255).map(|c| char::from_u32(c).unwrap()).collect();
        assert_eq!(s, expect);
    }

    #[test]
    fn utf16_bom_either_endianness() {
        let text = "a,é\n1,😀\n";
        let mut le = vec![0xFF, 0xFE];
        le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let mut be = vec![0xFE, 0xFF];
        be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        let enc = Encoding::for_label(b"utf-16").unwrap();
        assert_eq!(all(Transcoder::whatwg(&le[..], enc)).unwrap(), text);
        assert_eq!(all(Transcoder::whatwg(&be[..], enc)).unwrap(), text);
    }

    #[test]
    fn malformed_is_an_error() {
        let enc = Encoding::for_label(b"utf-16le").unwrap();
        // a lone high surrogate, then end of input
        let e = all(Transcoder::whatwg(&[0x3D, 0xD8, 0x41, 0x00][..], enc)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // an odd trailing byte
        assert!(all(Transcoder::whatwg(&[0x41, 0x00, 0x42][..], enc)).is_err());
    }
}
