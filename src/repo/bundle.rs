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

/// Opens the stored form; `None` when the repository file is missing. A bundle range is read
/// whole with `read_range` (bundled files are small, below `repo1-bundle-limit`); a bundle too
/// short to hold it is an error naming the bundle, so a truncated bundle is reported as such
/// rather than as corrupt compressed data.
pub fn open(repo: &dyn Storage, stored: &Stored) -> Result<Option<Box<dyn Read + Send>>> {
    match stored {
        Stored::Object(path) => repo.open_read(path),
        Stored::Nowhere => Ok(Some(Box::new(std::io::empty()))),
        Stored::Range { path, offset, len } => {
            let wanted = usize::try_from(*len).map_err(|_| {
                Error::new(
                    ErrorKind::Format,
                    format!("bundled file of {len} bytes is too large to read"),
                )
            })?;
            let Some(bytes) = repo.read_range(path, *offset, wanted)? else {
                return Ok(None);
            };
            if bytes.len() != wanted {
                return Err(Error::new(
                    ErrorKind::FileRead,
                    format!(
                        "bundle '{}' is truncated: {len} bytes expected at offset {offset}, {} found",
                        repo.describe(path),
                        bytes.len()
                    ),
                )
                .with_hint("the repository is damaged; run verify"));
            }
            Ok(Some(Box::new(Cursor::new(bytes))))
        }
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
}
