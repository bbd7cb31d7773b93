//! Whole reads with plain lines split without csv-core (`csv_plain`) against every record
//! through csv-core: generated documents (quotes, CR/LF/CRLF, blank lines, wrong field counts,
//! invalid UTF-8, unterminated quotes), delivered in generated chunk sizes so records and CRLF
//! pairs straddle reads, must give the same header, batches (cells, record numbers, lines,
//! bytes, rejects) or the same error.

use proptest::prelude::*;

use super::*;
use crate::data::chunky::Chunky;

fn read(
    data: &[u8],
    (chunk, fail_at): (usize, Option<usize>),
    plain: bool,
    opts: &CsvOptions,
) -> Vec<String> {
    let src = Chunky::boxed(data, chunk, fail_at);
    let mut out = Vec::new();
    let mut r = match CsvReader::from_reader("t.csv", src, opts) {
        Ok(r) if plain => r,
        Ok(r) => r.without_plain_lines(),
        Err(e) => return vec![format!("open: {e}")],
    };
    out.push(format!("{:?}", r.header()));
    loop {
        match r.next_batch() {
            Ok(Some(b)) => {
                out.push(format!(
                    "batch {:?} {:?} {} bytes",
                    b.record_numbers, b.lines, b.bytes
                ));
                for i in 0..b.len() {
                    let cells: Vec<_> = b
                        .columns
                        .iter()
                        .map(|c| format!("{:?}", c.get(i)))
                        .collect();
                    out.push(format!("{cells:?} {:?}", b.reject_info(i)));
                }
            }
            Ok(None) => break,
            Err(e) => {
                out.push(format!("error: {e}"));
                break;
            }
        }
    }
    out.push(format!(
        "{} read, {} records",
        r.bytes_read(),
        r.records_read()
    ));
    out
}

fn document() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        8 => proptest::sample::select(&b"ab1,,,;\"\r\n\n"[..]),
        1 => proptest::sample::select(&[0xC3u8, 0xA9, 0xFF, 0x00][..]),
    ];
    proptest::collection::vec(byte, 0..120).prop_map(|body| {
        let mut d = b"a,b,c\n".to_vec();
        d.extend(body);
        d
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn plain_lines_read_as_csv_core_reads_them(
        doc in document(),
        chunk in prop_oneof![Just(1usize), 2usize..9, Just(8192usize)],
        fail_at in proptest::option::weighted(0.2, 6usize..130),
        batch_rows in 1usize..5,
        quoting in proptest::bool::weighted(0.85),
        max_field_bytes in prop_oneof![Just(3usize), Just(16 * 1024 * 1024)],
    ) {
        let opts = CsvOptions {
            quote: if quoting { "\"".into() } else { String::new() },
            batch_rows,
            max_field_bytes,
            ..CsvOptions::default()
        };
        let src = (chunk, fail_at);
        prop_assert_eq!(read(&doc, src, true, &opts), read(&doc, src, false, &opts));
    }
}

#[test]
fn plain_and_quoted_records_mixed_with_crlf_and_blank_lines() {
    let doc = b"id,sku,note\r\n1,SKU-1,\r\n\r\n2,SKU-2,note 2\n3,\"q\",x\n";
    let opts = CsvOptions::default();
    let got = read(doc, (8192, None), true, &opts);
    assert_eq!(got, read(doc, (8192, None), false, &opts));
    assert_eq!(got[1], "batch [1, 2, 3] [2, 4, 5] 48 bytes");
}
