//! The common CSV record, split without csv-core: one physical line, no quote character in it.
//!
//! csv-core walks its state machine a byte at a time (about 15 instructions a byte, the
//! reading side's largest cost). A record whose line holds no quote character cannot contain
//! a quoted field, an escaped quote or a line break, so csv-core would read it as exactly
//! this: the bytes up to the first CR or LF, split at every delimiter, the terminator byte
//! consumed (a CRLF's LF is then a blank line, which the reader skips and pairs with the CR
//! when counting lines, as after csv-core). Such a line's fields are slices of the line
//! itself (no copy): field `k` is `line[ends[k-1] + 1..ends[k]]`. Anything else -- a quote
//! anywhere in the line, no terminator in the buffered input, too many fields for `ends` --
//! is left to csv-core. Tested against csv-core on generated lines below, and through whole
//! reads in `csv_plain_tests.rs`.

/// One split line: `consumed` input bytes (the line and its terminator byte), `len` bytes
/// of line before the terminator, `nfields` field ends written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plain {
    pub consumed: usize,
    pub len: usize,
    pub nfields: usize,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;

/// The high bit of each byte of `w` that is zero, exactly (no borrow crosses bytes:
/// `(b & 0x7F) + 0x7F` is at most 0xFE).
#[inline]
fn zero_bytes(w: u64) -> u64 {
    !(((w & LOW7).wrapping_add(LOW7)) | w | LOW7)
}

/// Split the record at the start of `input` as csv-core would, if it is a plain line (see
/// the module docs); `None` leaves it to csv-core. `ends` receives each field's end offset in
/// the line (the next field starts one byte later, after the delimiter).
#[inline]
pub(crate) fn split_line(
    input: &[u8],
    delimiter: u8,
    quote: Option<u8>,
    ends: &mut [usize],
) -> Option<Plain> {
    let term = memchr::memchr2(b'\n', b'\r', input)?;
    let line = &input[..term];
    if quote.is_some_and(|q| memchr::memchr(q, line).is_some()) {
        return None;
    }
    let mut nfields = 0usize;
    let pattern = ONES.wrapping_mul(u64::from(delimiter));
    let mut words = line.chunks_exact(8);
    let mut base = 0usize;
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let mut hits = zero_bytes(u64::from_le_bytes(w) ^ pattern);
        while hits != 0 {
            *ends.get_mut(nfields)? = base + (hits.trailing_zeros() / 8) as usize;
            nfields += 1;
            hits &= hits - 1;
        }
        base += 8;
    }
    for (i, &b) in words.remainder().iter().enumerate() {
        if b == delimiter {
            *ends.get_mut(nfields)? = base + i;
            nfields += 1;
        }
    }
    *ends.get_mut(nfields)? = line.len();
    Some(Plain {
        consumed: term + 1,
        len: line.len(),
        nfields: nfields + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use csv_core::{ReadRecordResult, ReaderBuilder};
    use proptest::prelude::*;

    /// What csv-core makes of the record at the start of `input` (a fresh reader that has
    /// read a header already, as the CSV reader's is when it reads records).
    fn core(
        input: &[u8],
        delimiter: u8,
        quote: Option<u8>,
    ) -> Option<(usize, Vec<u8>, Vec<usize>)> {
        let mut r = ReaderBuilder::new()
            .delimiter(delimiter)
            .quote(quote.unwrap_or(b'"'))
            .quoting(quote.is_some())
            .build();
        let (mut o, mut e) = (vec![0u8; 64], vec![0usize; 4]);
        r.read_record(b"h\n", &mut o, &mut e);
        let (mut out, mut ends) = (vec![0u8; 4096], vec![0usize; 4096]);
        let (res, nin, nout, nend) = r.read_record(input, &mut out, &mut ends);
        match res {
            ReadRecordResult::Record => Some((nin, out[..nout].to_vec(), ends[..nend].to_vec())),
            _ => None,
        }
    }

    fn line() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            6 => proptest::sample::select(&b"ab1,;\t \"'"[..]),
            1 => proptest::sample::select(&b"\r\n"[..]),
            1 => any::<u8>(),
        ];
        // never a terminator first: the reader skips blank lines before each record
        (
            proptest::sample::select(&b"ab,;\"x"[..]),
            proptest::collection::vec(byte, 0..40),
        )
            .prop_map(|(first, rest)| std::iter::once(first).chain(rest).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn a_split_line_is_what_csv_core_reads(
            input in line(),
            delimiter in proptest::sample::select(&b",;\t"[..]),
            quote in proptest::option::weighted(0.8, proptest::sample::select(&b"\"'"[..])),
        ) {
            let mut ends = vec![0usize; 4096];
            if let Some(p) = split_line(&input, delimiter, quote, &mut ends) {
                let (nin, core_out, core_ends) =
                    core(&input, delimiter, quote).expect("csv-core reads a record");
                prop_assert_eq!(p.consumed, nin);
                // the same fields: csv-core's copied out, ours sliced from the line
                let (mut fields, mut core_fields, mut start, mut core_start) =
                    (Vec::new(), Vec::new(), 0, 0);
                for k in 0..p.nfields {
                    fields.push(&input[start..ends[k]]);
                    start = ends[k] + 1;
                }
                for &e in &core_ends {
                    core_fields.push(&core_out[core_start..e]);
                    core_start = e;
                }
                prop_assert_eq!(fields, core_fields);
                prop_assert_eq!(p.len + 1, p.consumed);
            }
        }
    }

    #[test]
    fn what_is_left_to_csv_core() {
        let mut ends = vec![0usize; 2];
        let q = Some(b'"');
        assert_eq!(split_line(b"a,\"b\"\n", b',', q, &mut ends), None);
        assert_eq!(
            split_line(b"a,b", b',', q, &mut ends),
            None,
            "no terminator"
        );
        assert_eq!(
            split_line(b"a,b,c\n", b',', q, &mut ends),
            None,
            "3 ends > 2"
        );
        let p = split_line(b"a\"b,c\r\nd", b',', None, &mut ends).unwrap();
        assert_eq!((p.consumed, p.len, p.nfields), (6, 5, 2));
        assert_eq!(&ends[..2], &[3, 5]);
        // delimiters in and across 8-byte words, bytes with the high bit set around them
        let mut ends = vec![0usize; 16];
        let line = b"\xff,\xac\x2c\xec,,0123456789,\x80\n";
        let p = split_line(line, b',', q, &mut ends).unwrap();
        assert_eq!(&ends[..p.nfields], &[1, 3, 5, 6, 17, 19]);
    }
}
