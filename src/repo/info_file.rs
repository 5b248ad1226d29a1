//! Checksummed metadata files with a `.copy` twin (archive.info, backup.info, backup.manifest).
//!
//! On disk an info file is JSON: `{"format": 1, "checksum": "<sha256>", "content": {...}}`.
//! The checksum covers the compact serialisation of `content` with its keys sorted, so it does
//! not depend on whitespace. Saving writes the file, then its `.copy`, each atomically and
//! durably. Loading reads the file and falls back to the copy when the file is missing, cannot be
//! parsed or fails its checksum; a file whose checksum does not match is never trusted.

use std::io::Read;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::Digest;

use crate::error::{Error, ErrorKind, Result};
use crate::log_warn;
use crate::repo::layout::COPY_EXT;
use crate::storage::{Storage, WriteOptions};

/// The version of the info file envelope: pgkeep's repository format number, which `info`
/// reports as `backrest.format`.
pub const FORMAT: u64 = 1;

/// Writes `content` to `path` and then to `path.copy`.
pub fn save<T: Serialize>(storage: &dyn Storage, path: &str, content: &T) -> Result<()> {
    let bytes = encode(content)?;
    for target in [path.to_string(), format!("{path}{COPY_EXT}")] {
        let mut file = storage.open_write(&target, &WriteOptions::default())?;
        std::io::Write::write_all(&mut file, &bytes)
            .map_err(|e| Error::io(ErrorKind::FileWrite, "write", storage.describe(&target), &e))?;
        file.commit()?;
        fail::fail_point!("info-file-saved");
    }
    Ok(())
}

/// Reads `path`, falling back to its copy. `None` when neither exists.
pub fn load<T: DeserializeOwned>(storage: &dyn Storage, path: &str) -> Result<Option<T>> {
    let copy = format!("{path}{COPY_EXT}");
    let main_result = read_one(storage, path);
    match main_result {
        Ok(Some(content)) => return Ok(Some(content)),
        Ok(None) => {}
        Err(ref err) => {
            log_warn!("{}, trying '{}'", err.message(), storage.describe(&copy));
        }
    }
    match read_one(storage, &copy)? {
        Some(content) => {
            if main_result.is_ok() {
                log_warn!(
                    "'{}' is missing, using its copy '{}'",
                    storage.describe(path),
                    storage.describe(&copy)
                );
            }
            Ok(Some(content))
        }
        None => match main_result {
            Err(err) => Err(err),
            Ok(_) => Ok(None),
        },
    }
}

fn read_one<T: DeserializeOwned>(storage: &dyn Storage, path: &str) -> Result<Option<T>> {
    let Some(mut reader) = storage.open_read(path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(ErrorKind::FileRead, "read", storage.describe(path), &e))?;
    decode(&bytes)
        .map(Some)
        .map_err(|err| err.context(format!("invalid info file '{}'", storage.describe(path))))
}

/// Serialises `content` into the checksummed envelope.
pub fn encode<T: Serialize>(content: &T) -> Result<Vec<u8>> {
    let value = serde_json::to_value(content)
        .map_err(|e| Error::new(ErrorKind::Assert, format!("unable to serialise info: {e}")))?;
    let checksum = checksum_of(&value)?;
    let envelope = serde_json::json!({ "format": FORMAT, "checksum": checksum, "content": value });
    let mut bytes = serde_json::to_vec_pretty(&envelope)
        .map_err(|e| Error::new(ErrorKind::Assert, format!("unable to serialise info: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Parses an envelope and verifies its checksum.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let mut envelope: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::new(ErrorKind::Format, format!("not valid JSON: {e}")))?;
    let format = envelope.get("format").and_then(Value::as_u64);
    if format != Some(FORMAT) {
        return Err(Error::new(
            ErrorKind::Format,
            format!("unsupported format {format:?}, expected {FORMAT}"),
        ));
    }
    let stored = envelope
        .get("checksum")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Error::new(ErrorKind::Format, "checksum is missing"))?;
    let content = envelope
        .get_mut("content")
        .map(Value::take)
        .ok_or_else(|| Error::new(ErrorKind::Format, "content is missing"))?;
    let actual = checksum_of(&content)?;
    if actual != stored {
        return Err(Error::new(
            ErrorKind::Checksum,
            format!("checksum '{actual}' does not match stored checksum '{stored}'"),
        ));
    }
    serde_json::from_value(content)
        .map_err(|e| Error::new(ErrorKind::Format, format!("unexpected content: {e}")))
}

fn checksum_of(content: &Value) -> Result<String> {
    // serde_json's map keeps keys sorted, so this serialisation is canonical.
    let canonical = serde_json::to_vec(content)
        .map_err(|e| Error::new(ErrorKind::Assert, format!("unable to serialise info: {e}")))?;
    let digest = sha2::Sha256::digest(&canonical);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::PosixStorage;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        name: String,
        count: u64,
    }

    fn sample() -> Sample {
        Sample {
            name: "demo".into(),
            count: 7,
        }
    }

    #[test]
    fn round_trips_and_writes_a_copy() {
        let dir = tempfile::tempdir().unwrap();
        let storage = PosixStorage::new(dir.path().to_path_buf());
        save(&storage, "a/x.info", &sample()).unwrap();
        assert!(dir.path().join("a/x.info.copy").exists());
        let loaded: Option<Sample> = load(&storage, "a/x.info").unwrap();
        assert_eq!(loaded, Some(sample()));
    }

    #[test]
    fn missing_file_and_copy_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let storage = PosixStorage::new(dir.path().to_path_buf());
        let loaded: Option<Sample> = load(&storage, "nothing.info").unwrap();
        assert_eq!(loaded, None);
    }

    #[test]
    fn tampered_file_falls_back_to_its_copy() {
        let dir = tempfile::tempdir().unwrap();
        let storage = PosixStorage::new(dir.path().to_path_buf());
        save(&storage, "x.info", &sample()).unwrap();
        let path = dir.path().join("x.info");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"count\": 7", "\"count\": 8");
        std::fs::write(&path, text).unwrap();
        let loaded: Option<Sample> = load(&storage, "x.info").unwrap();
        assert_eq!(loaded, Some(sample()));
    }

    #[test]
    fn missing_main_file_uses_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let storage = PosixStorage::new(dir.path().to_path_buf());
        save(&storage, "x.info", &sample()).unwrap();
        std::fs::remove_file(dir.path().join("x.info")).unwrap();
        let loaded: Option<Sample> = load(&storage, "x.info").unwrap();
        assert_eq!(loaded, Some(sample()));
    }

    #[test]
    fn both_tampered_is_a_checksum_error() {
        let dir = tempfile::tempdir().unwrap();
        let storage = PosixStorage::new(dir.path().to_path_buf());
        save(&storage, "x.info", &sample()).unwrap();
        for name in ["x.info", "x.info.copy"] {
            let path = dir.path().join(name);
            let text = std::fs::read_to_string(&path)
                .unwrap()
                .replace("demo", "dema");
            std::fs::write(&path, text).unwrap();
        }
        let err = load::<Sample>(&storage, "x.info").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Checksum);
        assert!(
            err.message().contains("invalid info file"),
            "{}",
            err.message()
        );
    }
}
