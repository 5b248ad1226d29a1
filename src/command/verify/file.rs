//! Verifying one stored file: a backup file against its manifest entry, or an archived WAL
//! file against the checksum in its name.
//!
//! The file streams once through decompress → size → SHA-256 into nothing, with one buffer of
//! `buffer-size`, so checking runs on worker threads with bounded memory like a backup does.
//! A damaged file is an [`Outcome`], not an error: verify reports every problem it finds
//! instead of stopping at the first. Only a failure of the storage itself (other than reading
//! the file) ends the run.

use std::io::Read;

use crate::error::Result;
use crate::io::{CompressType, FilterChain, FilterResult, FilterSpec, stream};
use crate::repo::block_read::{ReassembledRead, Reassembler};
use crate::repo::bundle::{self, Stored};
use crate::repo::manifest::FileEntry;
use crate::storage::Storage;

/// One file to check.
#[derive(Debug, Clone)]
pub struct FileCheck {
    /// Path relative to the repository root.
    pub path: String,
    pub compress: CompressType,
    /// SHA-256 of the original content.
    pub checksum: String,
    /// Size of the original content, when recorded.
    pub size: Option<u64>,
    /// Size of the stored file, when recorded.
    pub repo_size: Option<u64>,
    /// Set for a block-incremental file: checked by reassembling it from its map.
    pub block: Option<BlockCheck>,
    /// For a bundled backup file: `path` is the bundle, and this says which file of it.
    pub bundled: Option<Bundled>,
}

/// What reassembling a block-incremental file needs.
#[derive(Debug, Clone)]
pub struct BlockCheck {
    pub stanza: String,
    /// The backup set holding the entry (and its map).
    pub holder: String,
    pub entry: FileEntry,
}

/// A backup file stored inside a bundle.
#[derive(Debug, Clone)]
pub struct Bundled {
    /// The path the file would have on its own, for messages.
    pub name: String,
    /// Where its stored form starts in the bundle (`repo_size` bytes long).
    pub offset: u64,
}

impl FileCheck {
    /// The file as messages name it: quoted, and with its bundle when bundled.
    pub fn describe(&self, repo: &dyn Storage) -> String {
        match &self.bundled {
            Some(bundled) => format!(
                "'{}' (in bundle '{}')",
                repo.describe(&bundled.name),
                repo.describe(&self.path)
            ),
            None => format!("'{}'", repo.describe(&self.path)),
        }
    }
}

/// What checking one file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Content matches; `size` is its original size.
    Valid { size: u64 },
    /// The file does not exist.
    Missing,
    /// The file exists but is damaged or unreadable; the reason says how.
    Invalid(Damage, String),
}

/// How an existing file is damaged, in the classes of pgBackRest's verify report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// The content read back does not have the recorded checksum.
    Checksum,
    /// The stored file or its content does not have the recorded size.
    Size,
    /// Anything else: corrupt compressed data, a damaged block map or bundle, a read error.
    Other,
}

/// Reads the file through its decompressor and compares size and checksum.
pub fn check(repo: &dyn Storage, file: &FileCheck, buffer_size: usize) -> Result<Outcome> {
    if let Some(block) = &file.block {
        // The map and every holder's blocks, each checked against the map's hashes; the whole
        // content then against the manifest's size and SHA-256.
        let mut reader: Box<dyn Read + Send + '_> = match Reassembler::open(
            repo,
            &block.stanza,
            &block.holder,
            file.compress,
            &block.entry,
        ) {
            Ok(blocks) => Box::new(ReassembledRead::new(blocks)),
            Err(err) => return Ok(Outcome::Invalid(Damage::Other, err.message().to_string())),
        };
        return stream_check(&mut reader, file, buffer_size);
    }
    let mut reader = match &file.bundled {
        Some(bundled) => {
            let stored = Stored::Range {
                path: file.path.clone(),
                offset: bundled.offset,
                len: file.repo_size.unwrap_or(0),
            };
            match bundle::open(repo, &stored) {
                Ok(Some(reader)) => reader,
                Ok(None) => return Ok(Outcome::Missing),
                Err(err) => return Ok(Outcome::Invalid(Damage::Other, err.message().to_string())),
            }
        }
        None => match open_object(repo, file)? {
            Ok(reader) => reader,
            Err(outcome) => return Ok(outcome),
        },
    };
    stream_check(&mut reader, file, buffer_size)
}

/// Opens a stored file of its own after checking its size; an outcome when it cannot be read.
fn open_object(
    repo: &dyn Storage,
    file: &FileCheck,
) -> Result<std::result::Result<Box<dyn std::io::Read + Send>, Outcome>> {
    let Some(info) = repo.info(&file.path)? else {
        return Ok(Err(Outcome::Missing));
    };
    if let Some(expected) = file.repo_size
        && info.size != expected
    {
        return Ok(Err(Outcome::Invalid(
            Damage::Size,
            format!(
                "stored size {} does not match {expected} in the manifest",
                info.size
            ),
        )));
    }
    Ok(match repo.open_read(&file.path) {
        Ok(Some(reader)) => Ok(reader),
        // Removed between the listing and now: for WAL, expire may have taken it.
        Ok(None) => Err(Outcome::Missing),
        Err(err) => Err(Outcome::Invalid(Damage::Other, err.message().to_string())),
    })
}

/// Streams the stored form through its decompressor and compares size and checksum.
fn stream_check(
    reader: &mut Box<dyn std::io::Read + Send + '_>,
    file: &FileCheck,
    buffer_size: usize,
) -> Result<Outcome> {
    let mut specs = Vec::new();
    if file.compress != CompressType::None && file.block.is_none() {
        specs.push(FilterSpec::Decompress {
            kind: file.compress,
        });
    }
    specs.push(FilterSpec::Size);
    specs.push(FilterSpec::Hash);
    let mut chain = FilterChain::from_specs(&specs)?;
    let results = match stream::copy_through(reader, &mut chain, &mut std::io::sink(), buffer_size)
    {
        Ok(results) => results,
        // Corrupt compressed data, a truncated stream, an I/O error: all the file's.
        Err(err) => return Ok(Outcome::Invalid(Damage::Other, err.message().to_string())),
    };
    let (size, checksum) = match results.as_slice() {
        [.., FilterResult::Size(size), FilterResult::Hash(checksum)] => (*size, checksum),
        other => {
            return Ok(Outcome::Invalid(
                Damage::Other,
                format!("unexpected filter results {other:?}"),
            ));
        }
    };
    if let Some(expected) = file.size
        && size != expected
    {
        return Ok(Outcome::Invalid(
            Damage::Size,
            format!("size {size} does not match {expected} in the manifest"),
        ));
    }
    if *checksum != file.checksum {
        return Ok(Outcome::Invalid(
            Damage::Checksum,
            format!("checksum '{checksum}' does not match '{}'", file.checksum),
        ));
    }
    Ok(Outcome::Valid { size })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::sha256_hex;
    use crate::storage::{PosixStorage, WriteOptions};

    fn stored(compress: CompressType) -> (tempfile::TempDir, PosixStorage, FileCheck) {
        let dir = tempfile::tempdir().unwrap();
        let repo = PosixStorage::new(dir.path().to_path_buf());
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let mut chain = FilterChain::from_specs(&match compress {
            CompressType::None => vec![],
            kind => vec![FilterSpec::Compress {
                kind,
                level: kind.default_level(),
            }],
        })
        .unwrap();
        let mut bytes = Vec::new();
        stream::copy_through(&mut &data[..], &mut chain, &mut bytes, 8192).unwrap();
        repo.put("f", &bytes, &WriteOptions::default()).unwrap();
        let check = FileCheck {
            path: "f".into(),
            compress,
            checksum: sha256_hex(&data),
            size: Some(data.len() as u64),
            repo_size: Some(bytes.len() as u64),
            block: None,
            bundled: None,
        };
        (dir, repo, check)
    }

    fn flip(dir: &tempfile::TempDir, at_fraction: usize) {
        let path = dir.path().join("f");
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() / at_fraction;
        bytes[at] ^= 0x40;
        std::fs::write(&path, bytes).unwrap();
    }

    #[test]
    fn an_intact_file_is_valid_compressed_or_not() {
        for kind in [CompressType::None, CompressType::Zst, CompressType::Gz] {
            let (_dir, repo, file) = stored(kind);
            assert_eq!(
                check(&repo, &file, 4096).unwrap(),
                Outcome::Valid { size: 200_000 },
                "{kind:?}"
            );
        }
    }

    #[test]
    fn a_flipped_byte_is_invalid_compressed_or_not() {
        for kind in [CompressType::None, CompressType::Zst, CompressType::Lz4] {
            let (dir, repo, file) = stored(kind);
            flip(&dir, 2);
            let outcome = check(&repo, &file, 4096).unwrap();
            assert!(
                matches!(outcome, Outcome::Invalid(..)),
                "{kind:?}: {outcome:?}"
            );
        }
    }

    #[test]
    fn a_truncated_file_is_invalid_even_without_a_recorded_size() {
        let (dir, repo, mut file) = stored(CompressType::Zst);
        file.repo_size = None;
        let path = dir.path().join("f");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        match check(&repo, &file, 4096).unwrap() {
            Outcome::Invalid(damage, reason) => {
                assert_eq!(damage, Damage::Other);
                assert!(reason.contains("decompress"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_wrong_stored_size_or_a_missing_file_is_reported() {
        let (dir, repo, mut file) = stored(CompressType::None);
        file.repo_size = Some(1);
        match check(&repo, &file, 4096).unwrap() {
            Outcome::Invalid(damage, reason) => {
                assert_eq!(damage, Damage::Size);
                assert_eq!(
                    reason,
                    "stored size 200000 does not match 1 in the manifest"
                )
            }
            other => panic!("{other:?}"),
        }
        std::fs::remove_file(dir.path().join("f")).unwrap();
        assert_eq!(check(&repo, &file, 4096).unwrap(), Outcome::Missing);
    }
}
