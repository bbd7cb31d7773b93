//! Test input: a byte source that hands out at most `chunk` bytes a read (so records and lines
//! straddle reads) and can fail one read once it has handed out `fail_at` bytes (an error must
//! surface whichever way the input is split). Shared by the readers' equality tests.

use std::io::{self, Read};

pub(crate) struct Chunky {
    data: Vec<u8>,
    pos: usize,
    chunk: usize,
    fail_at: Option<usize>,
}

impl Chunky {
    pub(crate) fn new(data: &[u8], chunk: usize, fail_at: Option<usize>) -> Self {
        Chunky {
            data: data.to_vec(),
            pos: 0,
            chunk,
            fail_at,
        }
    }

    /// [`Chunky::new`] boxed, as the readers' `from_reader` take it.
    pub(crate) fn boxed(data: &[u8], chunk: usize, fail_at: Option<usize>) -> Box<dyn Read + Send> {
        Box::new(Self::new(data, chunk, fail_at))
    }
}

impl Read for Chunky {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.fail_at.is_some_and(|f| self.pos >= f) {
            self.fail_at = None;
            return Err(io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.chunk).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
