//! Bundles: many small files of a backup set stored in one repository file.
//!
//! A bundle is `backup/<stanza>/<label>/bundle/<id>` (`id` a decimal integer, unique within the
//! set): the stored forms of its files one after the other, each compressed on its own (its own
//! frame), so any one file is read alone with a range read of `repo_size` bytes at its
//! `bundle_offset`. There is no header, index or padding: the manifest is the index. A
//! zero-length file is stored nowhere. This module says where a manifest entry's stored form is
//! and opens it; writing bundles is the backup's (`command/backup/bundle.rs`).

use std::io::{Cursor, Read};

use crate::error::{Error, ErrorKind, Result};
use crate::io::{CompressType, FilterSpec};
use crate::repo::layout;
use crate::repo::manifest::{FileEntry, Manifest};
use crate::storage::Storage;

/// The directory of a set's bundles.
pub fn bundle_dir(stanza: &str, label: &str) -> String {
    format!("{}/bundle", layout::backup_set_dir(stanza, label))
}

/// The path of bundle `id` of a set.
pub fn bundle_path(stanza: &str, label: &str, id: u64) -> String {
    format!("{}/{id}", bundle_dir(stanza, label))
}

/// Where the stored form of a file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// A repository file of its own.
    Object(String),
    /// `len` bytes at `offset` of a bundle.
    Range { path: String, offset: u64, len: u64 },
    /// Nowhere: a zero-length file, listed in the manifest only.
    Nowhere,
}

impl Stored {
    /// The repository path that holds the bytes, if any.
    pub fn path(&self) -> Option<&str> {
        match self {
            Stored::Object(path) | Stored::Range { path, .. } => Some(path),
            Stored::Nowhere => None,
        }
    }
}

/// Where `file` of `manifest` is stored: in its holder's set (the set itself, or the one its
/// `reference` names).
pub fn locate(stanza: &str, manifest: &Manifest, file: &FileEntry) -> Stored {
    let holder = manifest.holder(file);
    match (file.bundle_id, file.bundle_offset) {
        (Some(id), offset) => Stored::Range {
            path: bundle_path(stanza, holder, id),
            offset: offset.unwrap_or(0),
            len: file.repo_size,
        },
        // Zero-length files of a bundled backup have no stored form. (Without bundling they
        // are objects; with compress-type=none those are empty too, so reading nothing is
        // the same content.)
        (None, _) if file.size == 0 && file.repo_size == 0 => Stored::Nowhere,
        (None, _) => Stored::Object(layout::backup_file(
            stanza,
            holder,
            &file.name,
            manifest.compress_type.extension(),
        )),
    }
}

/// The filters that turn a stored form back into the content: the decompressor, unless the
/// file is stored nowhere (there is no compressed frame to read).
pub fn decompress_specs(stored: &Stored, compress: CompressType) -> Vec<FilterSpec> {
    if compress == CompressType::None || *stored == Stored::Nowhere {
        Vec::new()
    } else {
        vec![FilterSpec::Decompress { kind: compress }]
    }
}

/// The most bytes one `read_range` of a bundle asks for. A bundled file's length comes from
/// the manifest, which anyone who can write the repository can edit (its checksum is
/// recomputable): it must never size an allocation. Files up to this size (all of them with the
/// default `repo1-bundle-limit` of 2 MiB) are read with one range read; larger ones stream.
pub const RANGE_CHUNK: u64 = 4 * 1024 * 1024;

/// Opens the stored form; `None` when the repository file is missing. A bundle range no larger
/// than [`RANGE_CHUNK`] is read whole with `read_range`; a larger one is first checked against
/// the bundle's real size and then streamed, so what the manifest claims never becomes an
/// allocation. A bundle too short to hold the range (truncated, or a manifest claiming more
/// than is there) is a `FileInvalid` error naming the bundle and both numbers, so it is
/// reported as such rather than as corrupt compressed data.
pub fn open(repo: &dyn Storage, stored: &Stored) -> Result<Option<Box<dyn Read + Send>>> {
    match stored {
        Stored::Object(path) => repo.open_read(path),
        Stored::Nowhere => Ok(Some(Box::new(std::io::empty()))),
        Stored::Range { path, offset, len } => open_range(repo, path, *offset, *len),
    }
}

fn open_range(
    repo: &dyn Storage,
    path: &str,
    offset: u64,
    len: u64,
) -> Result<Option<Box<dyn Read + Send>>> {
    let truncated = |found: String| {
        Error::new(
            ErrorKind::FileInvalid,
            format!(
                "bundle '{}' is truncated: {len} bytes expected at offset {offset}, {found}",
                repo.describe(path)
            ),
        )
        .with_hint("the repository is damaged (the bundle or the manifest naming it); run verify")
    };
    if offset.checked_add(len).is_none() {
        return Err(truncated("beyond any file's end".into()));
    }
    if len <= RANGE_CHUNK {
        // Bounded by RANGE_CHUNK, so reading first and checking the length after is safe.
        let wanted = usize::try_from(len).map_err(|_| truncated("too large to read".into()))?;
        let Some(bytes) = repo.read_range(path, offset, wanted)? else {
            return Ok(None);
        };
        if bytes.len() != wanted {
            return Err(truncated(format!("{} found", bytes.len())));
        }
        return Ok(Some(Box::new(Cursor::new(bytes))));
    }
    let Some(info) = repo.info(path)? else {
        return Ok(None);
    };
    if offset.saturating_add(len) > info.size {
        return Err(truncated(format!("the bundle has {} bytes", info.size)));
    }
    let Some(mut reader) = repo.open_read(path)? else {
        return Ok(None);
    };
    // The storage seam reads forward only; ranges this large exist only with a
    // repo1-bundle-limit above RANGE_CHUNK, so reading over the bytes before is acceptable.
    let skipped = std::io::copy(&mut (&mut reader).take(offset), &mut std::io::sink())
        .map_err(|e| Error::io(ErrorKind::FileRead, "read", repo.describe(path), &e))?;
    if skipped != offset {
        return Err(truncated(format!("the bundle ends at {skipped}")));
    }
    Ok(Some(Box::new(ExactRead {
        inner: reader.take(len),
        remaining: len,
        what: repo.describe(path),
    })))
}

/// A streamed bundle range that must yield exactly its length: a bundle that shrank after its
/// size was checked ends in an error, never in a short file.
struct ExactRead {
    inner: std::io::Take<Box<dyn Read + Send>>,
    remaining: u64,
    what: String,
}

impl Read for ExactRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.remaining > 0 && !buf.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "bundle '{}' is truncated: {} bytes missing",
                    self.what, self.remaining
                ),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{PosixStorage, WriteOptions};

    fn entry(size: u64, repo_size: u64, bundle: Option<(u64, u64)>) -> FileEntry {
        FileEntry {
            name: "pg_data/base/1/1".into(),
            size,
            mtime: 0,
            mode: 0o600,
            user: None,
            group: None,
            checksum: String::new(),
            repo_size,
            reference: Some("20261124-100000F".into()),
            page_errors: None,
            block: None,
            bundle_id: bundle.map(|b| b.0),
            bundle_offset: bundle.map(|b| b.1),
        }
    }

    #[test]
    fn entries_are_located_in_their_holders_bundle_or_object() {
        let manifest = Manifest {
            label: "20261125-100000F_20261125-110000I".into(),
            backup_type: crate::repo::BackupType::Incr,
            prior: None,
            references: vec![],
            db_id: 1,
            pg_version: "15".into(),
            system_id: 1,
            pg_path: "/pg".into(),
            compress_type: CompressType::Zst,
            timestamp_start: 0,
            timestamp_stop: 0,
            lsn_start: String::new(),
            lsn_stop: String::new(),
            archive_start: String::new(),
            archive_stop: String::new(),
            timeline: 1,
            data_checksums: true,
            checksum_page: false,
            online: true,
            archive_copy: false,
            databases: vec![],
            annotation: Default::default(),
            paths: vec![],
            files: vec![],
            links: vec![],
        };
        let holder = "20261124-100000F";
        assert_eq!(
            locate("s", &manifest, &entry(10, 7, Some((3, 100)))),
            Stored::Range {
                path: format!("backup/s/{holder}/bundle/3"),
                offset: 100,
                len: 7
            }
        );
        assert_eq!(
            locate("s", &manifest, &entry(10, 7, None)).path(),
            Some(format!("backup/s/{holder}/pg_data/base/1/1.zst").as_str())
        );
        assert_eq!(locate("s", &manifest, &entry(0, 0, None)), Stored::Nowhere);
    }

    #[test]
    fn a_short_bundle_is_reported_as_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let repo = PosixStorage::new(dir.path().to_path_buf());
        repo.put("b", b"0123456789", &WriteOptions::default())
            .unwrap();
        let range = |offset, len| Stored::Range {
            path: "b".into(),
            offset,
            len,
        };
        let mut content = String::new();
        open(&repo, &range(3, 4))
            .unwrap()
            .unwrap()
            .read_to_string(&mut content)
            .unwrap();
        assert_eq!(content, "3456");
        let err = open(&repo, &range(8, 4)).err().unwrap();
        assert!(err.message().contains("is truncated"), "{}", err.message());
        let missing = Stored::Range {
            path: "nope".into(),
            offset: 0,
            len: 1,
        };
        assert!(open(&repo, &missing).unwrap().is_none());
    }

    /// Found by tests/integration/hostile_input/ and tests/integration/hostile_manifest.rs: a
    /// manifest claiming `repo_size` 2^63+5 overflowed a vector's capacity (a panic, exit 91)
    /// and 2^62 failed to allocate (SIGABRT). A range beyond the bundle's end is refused before
    /// it is read.
    #[test]
    fn ranges_beyond_the_bundle_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let repo = PosixStorage::new(dir.path().to_path_buf());
        repo.put("b", b"0123456789", &WriteOptions::default())
            .unwrap();
        for (offset, len) in [
            (0, (1 << 63) + 5),
            (0, 1 << 62),
            (3, 8),
            (11, 1),
            (1 << 62, 1),
            (u64::MAX, 1),
            (u64::MAX - 2, 5),
        ] {
            let range = Stored::Range {
                path: "b".into(),
                offset,
                len,
            };
            let err = open(&repo, &range).err().unwrap();
            assert_eq!(err.kind(), ErrorKind::FileInvalid, "{}", err.message());
            let expected = format!("is truncated: {len} bytes expected at offset {offset}, ");
            assert!(err.message().contains(&expected), "{}", err.message());
            assert!(err.message().starts_with("bundle '"), "{}", err.message());
        }
    }

    #[test]
    fn a_range_larger_than_one_read_streams_exactly_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let repo = PosixStorage::new(dir.path().to_path_buf());
        let data: Vec<u8> = (0..RANGE_CHUNK as usize + 1000)
            .map(|i| (i % 251) as u8)
            .collect();
        repo.put("b", &data, &WriteOptions::default()).unwrap();
        let range = |offset, len| Stored::Range {
            path: "b".into(),
            offset,
            len,
        };
        let mut content = Vec::new();
        open(&repo, &range(100, RANGE_CHUNK + 10))
            .unwrap()
            .unwrap()
            .read_to_end(&mut content)
            .unwrap();
        assert!(content == data[100..100 + RANGE_CHUNK as usize + 10]);
        let err = open(&repo, &range(990, RANGE_CHUNK + 11)).err().unwrap();
        let expected = format!("the bundle has {} bytes", data.len());
        assert!(err.message().contains(&expected), "{}", err.message());
        let missing = Stored::Range {
            path: "nope".into(),
            offset: 0,
            len: RANGE_CHUNK + 1,
        };
        assert!(open(&repo, &missing).unwrap().is_none());
    }

    #[test]
    fn a_streamed_range_that_ends_early_is_an_error_not_a_short_file() {
        let inner: Box<dyn Read + Send> = Box::new(Cursor::new(vec![1u8, 2, 3]));
        let mut reader = ExactRead {
            inner: inner.take(5),
            remaining: 5,
            what: "b".into(),
        };
        let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.to_string(), "bundle 'b' is truncated: 2 bytes missing");
    }
}
