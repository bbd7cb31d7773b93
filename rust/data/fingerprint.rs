//! Content fingerprints: xxh3-128 over the file's *content*: the bytes of a plain file, the
//! decompressed text of a gzip/bzip2/xz/zstd file (recognised by its magic bytes, see
//! `input`). So `orders.csv`, `orders.csv.gz` and the same data recompressed at another level
//! or in another format are one file to the ledger; a corrupt or truncated archive has no
//! fingerprint (an error naming the file). Streamed with a 1 MiB buffer.

use std::io::{self, Read};

use xxhash_rust::xxh3::Xxh3;

use super::error::DataError;

/// `"xxh3-128:<32 hex digits>"` of the file's bytes. A missing path, a directory or an
/// unreadable file is a [`DataError::Source`] naming the path.
pub fn file_fingerprint(path: &str) -> Result<String, DataError> {
    let err = |reason: String| DataError::source(path, None, reason);
    let mut file = super::input::open_path(path, None)?.reader;
    let mut hasher = Xxh3::new();
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::InvalidData => return Err(err(e.to_string())),
            Err(e) => return Err(err(format!("read error: {e}"))),
        }
    }
    Ok(format!("xxh3-128:{:032x}", hasher.digest128()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn matches_one_shot_hash_and_format() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        f.write_all(&data).unwrap();
        let fp = file_fingerprint(f.path().to_str().unwrap()).unwrap();
        let expect = format!("xxh3-128:{:032x}", xxhash_rust::xxh3::xxh3_128(&data));
        assert_eq!(fp, expect);
        assert_eq!(fp.len(), "xxh3-128:".len() + 32);
    }

    #[test]
    fn compressed_content_has_the_plain_files_fingerprint() {
        let data = b"id,name\n1,a\n".repeat(1000);
        let mut plain = tempfile::NamedTempFile::new().unwrap();
        plain.write_all(&data).unwrap();
        let mut gz = tempfile::NamedTempFile::new().unwrap();
        gz.write_all(&zstd::stream::encode_all(&data[..], 19).unwrap())
            .unwrap();
        let fp = |f: &tempfile::NamedTempFile| file_fingerprint(f.path().to_str().unwrap());
        assert_eq!(fp(&plain).unwrap(), fp(&gz).unwrap());
    }

    #[test]
    fn missing_and_directory() {
        assert!(file_fingerprint("/no/such/file")
            .unwrap_err()
            .to_string()
            .contains("no such file"));
        assert!(file_fingerprint("/tmp")
            .unwrap_err()
            .to_string()
            .contains("directory"));
    }
}
