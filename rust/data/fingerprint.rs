//! Content fingerprints: xxh3-128 over the whole file, streamed with a 1 MiB buffer.

use std::fs::File;
use std::io::{self, Read};

use xxhash_rust::xxh3::Xxh3;

use super::error::DataError;

/// `"xxh3-128:<32 hex digits>"` of the file's bytes. A missing path, a directory or an
/// unreadable file is a [`DataError::Source`] naming the path.
pub fn file_fingerprint(path: &str) -> Result<String, DataError> {
    let err = |reason: String| DataError::source(path, None, reason);
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => err("no such file".into()),
        _ => err(format!("cannot open: {e}")),
    })?;
    if meta.is_dir() {
        return Err(err("is a directory, not a file".into()));
    }
    let mut file = File::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
    let mut hasher = Xxh3::new();
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
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
