//! Fetching a segment: what archive-get and its background process (`get_async`) both do to
//! find one WAL file in the archive and deliver it, complete and verified, under its final name.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::io::{CompressType, FilterChain, FilterResult, FilterSpec, stream};
use crate::pg::control::ControlData;
use crate::pg::wal::{MAX_SEGMENT_SIZE, WalFileKind};
use crate::repo::{ArchiveInfo, DbHistory, archive, layout};
use crate::storage::Storage;
use crate::{log, log_debug, log_info};

use super::open;

/// Exit code when the archive does not hold the requested file.
pub const NOT_FOUND: i32 = 1;

/// Exit code when the archive holds the requested file but it cannot be delivered (a checksum
/// mismatch, data that does not decompress, a read or a write that fails), or when archive.info
/// and its copy are both unreadable: above 125, so PostgreSQL stops recovery instead of
/// promoting.
pub const STOP_RECOVERY: i32 = 255;

/// Fetches WAL file `name` from the archive itself, without the spool: the exit code as
/// [`run`] gives it.
pub fn get_sync(
    cfg: &Config,
    stanza: &str,
    name: &str,
    kind: WalFileKind,
    destination: &Path,
) -> Result<i32> {
    let repo = open::repo(cfg)?;
    let info = match load_archive_info(&repo, stanza) {
        Ok(info) => info,
        Err(Damaged(err)) => return Ok(stop_recovery(name, &err)),
        Err(Failed(err)) => return Err(err),
    };
    match locate(&repo, stanza, &recovering_dbs(&info), name, kind)? {
        Some(found) => {
            let fetched = fetch(
                &repo,
                &found.path,
                found.checksum.as_deref(),
                found.compress,
                destination,
                open::buffer_size(cfg),
            );
            if let Err(err) = fetched {
                return Ok(stop_recovery(name, &err));
            }
            log_info!("found {name} in the archive ({})", found.archive_id);
            Ok(0)
        }
        None => {
            log_info!("unable to find {name} in the archive");
            Ok(NOT_FOUND)
        }
    }
}

/// Why archive.info could not be loaded.
pub enum InfoFailure {
    /// archive.info (or its copy) is there but neither can be read: whether the archive holds
    /// a segment cannot be known, so recovery must not take it for absent.
    Damaged(Error),
    /// Anything else: a stanza that was never created, a repository host that stopped
    /// answering.
    Failed(Error),
}

use InfoFailure::{Damaged, Failed};

/// Loads archive.info, telling a damaged one apart from a missing one.
pub fn load_archive_info(
    repo: &dyn Storage,
    stanza: &str,
) -> std::result::Result<ArchiveInfo, InfoFailure> {
    match ArchiveInfo::load(repo, stanza) {
        Ok(Some(info)) => Ok(info),
        Ok(None) => Err(missing_archive_info(repo, stanza)),
        // The repository host did not answer: nothing is known about the archive, as when the
        // connection fails at the start (see docs/archive.md).
        Err(err) if matches!(err.kind(), ErrorKind::Protocol | ErrorKind::HostConnect) => {
            Err(Failed(err))
        }
        Err(err) => Err(Damaged(err)),
    }
}

/// archive.info and its copy are both missing. Where the stanza's archive directory still
/// holds archive ids, the WAL is there but its index is gone: the archive is damaged and whether
/// it holds a segment cannot be known. Where it holds nothing, the stanza was never created (or
/// the configuration names the wrong one), as stanza-create's own check says.
fn missing_archive_info(repo: &dyn Storage, stanza: &str) -> InfoFailure {
    let info_path = layout::archive_info(stanza);
    let holds_wal = match repo.list(&layout::archive_dir(stanza)) {
        Ok(Some(entries)) => entries.iter().any(|entry| {
            entry.name.as_str() != "archive.info" && entry.name != "archive.info.copy"
        }),
        Ok(None) => false,
        Err(err) => return Failed(err),
    };
    if holds_wal {
        return Damaged(Error::new(
            ErrorKind::FileMissing,
            format!(
                "'{}' and its copy are missing but '{}' holds archived WAL",
                repo.describe(&info_path),
                repo.describe(&layout::archive_dir(stanza))
            ),
        ));
    }
    Failed(crate::repo::archive_info::stanza_missing(
        repo, stanza, &info_path,
    ))
}

/// Logs why WAL file `name` cannot be delivered although the archive may hold it, and returns
/// [`STOP_RECOVERY`]: PostgreSQL must stop recovery here, not take the file for absent and
/// promote.
pub fn stop_recovery(name: &str, err: &Error) -> i32 {
    let err = Error::new(
        err.kind(),
        format!("unable to get WAL file '{name}': {}", err.message()),
    )
    .with_hint(
        "recovery must stop here rather than end early (exit 255): fix the cause (verify \
         checks the archive), then start PostgreSQL again",
    );
    log::log_error_value(&err);
    STOP_RECOVERY
}

/// Where an archived WAL file is.
pub struct Located {
    pub path: String,
    /// The checksum in its name (segments; history files have none).
    pub checksum: Option<String>,
    pub compress: CompressType,
    pub archive_id: String,
}

/// The db history entries whose archive ids may hold the WAL of the cluster being recovered.
///
/// After an upgrade two clusters' WAL can share segment names: look only under the archive ids
/// of the cluster being recovered (its pg_control is in the current directory, the data
/// directory PostgreSQL runs restore_command in), newest first; without pg_control, every id.
pub fn recovering_dbs(info: &ArchiveInfo) -> Vec<&DbHistory> {
    let recovering = ControlData::read(Path::new("global/pg_control")).ok();
    info.db_history
        .iter()
        .rev()
        .filter(|db| {
            recovering.as_ref().is_none_or(|control| {
                db.system_id == control.system_id && db.version == control.version.to_string()
            })
        })
        .collect()
}

/// Finds `name` under the archive ids of `dbs`, in order.
pub fn locate(
    repo: &dyn Storage,
    stanza: &str,
    dbs: &[&DbHistory],
    name: &str,
    kind: WalFileKind,
) -> Result<Option<Located>> {
    for db in dbs {
        let archive_id = db.archive_id();
        let found = if kind == WalFileKind::History {
            let path = layout::history_file(stanza, &archive_id, name);
            repo.info(&path)?.map(|_| (path, None, CompressType::None))
        } else {
            archive::find_wal(repo, stanza, &archive_id, name)?
                .into_iter()
                .next()
                .map(|wal| {
                    let compress =
                        CompressType::from_extension(&wal.ext).unwrap_or(CompressType::None);
                    (wal.path, Some(wal.checksum), compress)
                })
        };
        if let Some((path, checksum, compress)) = found {
            return Ok(Some(Located {
                path,
                checksum,
                compress,
                archive_id,
            }));
        }
        log_debug!("{name} not found in archive id {archive_id}");
    }
    Ok(None)
}

/// Copies an archived file to `destination` through a temp name, verifying its checksum.
pub fn fetch(
    repo: &dyn Storage,
    path: &str,
    checksum: Option<&str>,
    compress: CompressType,
    destination: &Path,
    buffer_size: usize,
) -> Result<()> {
    let limit = u64::from(MAX_SEGMENT_SIZE);
    fetch_capped(
        repo,
        path,
        checksum,
        compress,
        destination,
        buffer_size,
        limit,
    )
}

/// [`fetch`], refusing a file that decompresses to more than `limit` bytes.
fn fetch_capped(
    repo: &dyn Storage,
    path: &str,
    checksum: Option<&str>,
    compress: CompressType,
    destination: &Path,
    buffer_size: usize,
    limit: u64,
) -> Result<()> {
    let mut reader = repo.open_read(path)?.ok_or_else(|| {
        Error::new(
            ErrorKind::FileMissing,
            format!("'{}' disappeared", repo.describe(path)),
        )
    })?;
    let temp = temp_name(destination);
    let result = (|| {
        let mut file = std::fs::File::create(&temp)
            .map_err(|e| Error::io(ErrorKind::FileOpen, "open", temp.display(), &e))?;
        let mut specs = Vec::new();
        if compress != CompressType::None {
            specs.push(FilterSpec::Decompress { kind: compress });
        }
        specs.push(FilterSpec::Hash);
        let results = stream::copy_through(
            &mut reader,
            &mut FilterChain::from_specs(&specs)?,
            // A WAL file is never larger than PostgreSQL's largest segment.
            &mut stream::CappedWrite::new(&mut file, limit),
            buffer_size,
        )
        .map_err(|e| e.context(format!("unable to copy '{}'", repo.describe(path))))?;
        if let (Some(expected), Some(FilterResult::Hash(actual))) = (checksum, results.last())
            && expected != actual
        {
            return Err(Error::new(
                ErrorKind::Checksum,
                format!(
                    "'{}' has checksum '{actual}' but its name says '{expected}'",
                    repo.describe(path)
                ),
            )
            .with_hint("the archive is damaged; run verify"));
        }
        std::fs::rename(&temp, destination)
            .map_err(|e| Error::io(ErrorKind::FileWrite, "rename to", destination.display(), &e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

fn temp_name(destination: &Path) -> PathBuf {
    let mut name = destination.as_os_str().to_os_string();
    name.push(".pgkeep.tmp");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{PosixStorage, WriteOptions};

    #[test]
    fn a_file_that_decompresses_past_the_limit_is_refused_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let repo = PosixStorage::new(dir.path().join("repo"));
        let bomb = zstd::encode_all(&vec![0u8; 4 << 20][..], 3).unwrap();
        assert!(bomb.len() < 4096, "{}", bomb.len());
        repo.put("seg.zst", &bomb, &WriteOptions::default())
            .unwrap();
        let destination = dir.path().join("000000010000000000000001");
        let err = fetch_capped(
            &repo,
            "seg.zst",
            None,
            CompressType::Zst,
            &destination,
            64 << 10,
            1 << 20,
        )
        .unwrap_err();
        assert!(
            err.message()
                .contains("decompresses to more than the 1048576 bytes it may hold"),
            "{}",
            err.message()
        );
        assert!(!destination.exists());
        assert!(!temp_name(&destination).exists());
        fetch_capped(
            &repo,
            "seg.zst",
            None,
            CompressType::Zst,
            &destination,
            64 << 10,
            4 << 20,
        )
        .unwrap();
        assert_eq!(std::fs::metadata(&destination).unwrap().len(), 4 << 20);
    }
}
