//! Verifying the checksummed metadata files: archive.info, backup.info and each manifest,
//! every one with its `.copy` twin.
//!
//! Both files of a pair are read and checked on their own (`info_file::decode` refuses a
//! checksum mismatch). The pair is usable when at least one of them is valid: that is how every
//! other command reads it, falling back to the copy. A damaged or missing twin is therefore a
//! warning (the repository still works, and the next save rewrites both); a pair with no valid
//! file is an error, left to the caller to count. Two valid twins that differ (a crash between
//! writing the file and its copy) are a warning too: the main file, written first, is newer.

use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorKind, Result};
use crate::log_warn;
use crate::repo::layout::COPY_EXT;
use crate::repo::{ArchiveInfo, BackupInfo, info_file};
use crate::storage::Storage;

/// What reading a pair found.
#[derive(Debug)]
pub enum Pair<T> {
    /// At least one file is valid; this is its content (the main file's when both are).
    Usable(T),
    /// Neither file exists.
    Missing,
    /// Files exist but none is valid; the reason names each file and what is wrong with it.
    Unusable(String),
}

/// Reads `path` and `path.copy`, warning about a damaged or missing twin.
pub fn check_pair<T: DeserializeOwned + PartialEq>(
    repo: &dyn Storage,
    path: &str,
) -> Result<Pair<T>> {
    let copy = format!("{path}{COPY_EXT}");
    let main_file = read_one::<T>(repo, path)?;
    let copy_file = read_one::<T>(repo, &copy)?;
    let (shown, shown_copy) = (repo.describe(path), repo.describe(&copy));
    Ok(match (main_file, copy_file) {
        (Ok(Some(main)), Ok(Some(twin))) => {
            if main != twin {
                log_warn!("'{shown}' and its copy '{shown_copy}' differ: using '{shown}'");
            }
            Pair::Usable(main)
        }
        (Ok(Some(main)), twin) => {
            log_warn!("{}: '{shown}' is valid", problem(&shown_copy, &twin));
            Pair::Usable(main)
        }
        (main, Ok(Some(twin))) => {
            log_warn!(
                "{}: using its copy '{shown_copy}', which is valid",
                problem(&shown, &main)
            );
            Pair::Usable(twin)
        }
        (Ok(None), Ok(None)) => Pair::Missing,
        (main, twin) => Pair::Unusable(format!(
            "{}; {}",
            problem(&shown, &main),
            problem(&shown_copy, &twin)
        )),
    })
}

/// One file of a pair: `Ok(None)` when it does not exist, `Err` when it is not valid.
type OneFile<T> = std::result::Result<Option<T>, Error>;

fn read_one<T: DeserializeOwned>(repo: &dyn Storage, path: &str) -> Result<OneFile<T>> {
    // Only an unreadable file is the file's problem; other storage failures end the command.
    let bytes = match repo.read_all(path) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(Ok(None)),
        Err(err) if err.kind() == ErrorKind::FileRead => return Ok(Err(err)),
        Err(err) => return Err(err),
    };
    Ok(info_file::decode(&bytes).map(Some))
}

/// What is wrong with one file of a pair, for a message.
fn problem<T>(shown: &str, file: &OneFile<T>) -> String {
    match file {
        Ok(Some(_)) => format!("'{shown}' is valid"),
        Ok(None) => format!("'{shown}' is missing"),
        Err(err) => format!("'{shown}' is invalid: {}", err.message()),
    }
}

/// archive.info and backup.info must describe the same clusters, id for id: they are written
/// together by stanza-create, and WAL is looked up by the archive id of a backup's db id.
pub fn histories_match(archive: &ArchiveInfo, backup: &BackupInfo) -> Option<String> {
    let describe = |id: u32, version: &str, system_id: u64| {
        format!("db id {id} version {version} system id {system_id}")
    };
    let archive_dbs: Vec<String> = archive
        .db_history
        .iter()
        .map(|db| describe(db.id, &db.version, db.system_id))
        .collect();
    let backup_dbs: Vec<String> = backup
        .db_history
        .iter()
        .map(|db| describe(db.id, &db.version, db.system_id))
        .collect();
    (archive_dbs != backup_dbs).then(|| {
        format!(
            "archive.info and backup.info disagree about the stanza's clusters: archive.info has [{}], backup.info has [{}]",
            archive_dbs.join(", "),
            backup_dbs.join(", ")
        )
    })
}

/// The labels backup.info lists now, read without warnings (they were given once already);
/// `None` when neither file is valid.
pub fn listed_labels(repo: &dyn Storage, path: &str) -> Option<Vec<String>> {
    [path.to_string(), format!("{path}{COPY_EXT}")]
        .iter()
        .find_map(|p| match read_one::<BackupInfo>(repo, p) {
            Ok(Ok(Some(info))) => Some(info.backups.into_iter().map(|b| b.label).collect()),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::DbHistory;
    use crate::storage::PosixStorage;

    fn db(id: u32, system_id: u64) -> DbHistory {
        DbHistory {
            id,
            version: "15".into(),
            system_id,
            catalog_version: 202209061,
            control_version: 1300,
        }
    }

    fn tamper(dir: &std::path::Path, name: &str) {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"system_id\": 7", "\"system_id\": 8");
        std::fs::write(&path, text).unwrap();
    }

    #[test]
    fn a_damaged_or_missing_twin_leaves_the_pair_usable() {
        let dir = tempfile::tempdir().unwrap();
        let repo = PosixStorage::new(dir.path().to_path_buf());
        let info = ArchiveInfo::new(db(1, 7));
        info_file::save(&repo, "a.info", &info).unwrap();
        assert!(
            matches!(check_pair::<ArchiveInfo>(&repo, "a.info").unwrap(), Pair::Usable(i) if i == info)
        );
        tamper(dir.path(), "a.info");
        assert!(
            matches!(check_pair::<ArchiveInfo>(&repo, "a.info").unwrap(), Pair::Usable(i) if i == info)
        );
        std::fs::remove_file(dir.path().join("a.info")).unwrap();
        assert!(
            matches!(check_pair::<ArchiveInfo>(&repo, "a.info").unwrap(), Pair::Usable(i) if i == info)
        );
    }

    #[test]
    fn a_pair_without_a_valid_file_is_unusable_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let repo = PosixStorage::new(dir.path().to_path_buf());
        assert!(matches!(
            check_pair::<ArchiveInfo>(&repo, "a.info").unwrap(),
            Pair::Missing
        ));
        info_file::save(&repo, "a.info", &ArchiveInfo::new(db(1, 7))).unwrap();
        tamper(dir.path(), "a.info");
        std::fs::remove_file(dir.path().join("a.info.copy")).unwrap();
        match check_pair::<ArchiveInfo>(&repo, "a.info").unwrap() {
            Pair::Unusable(reason) => {
                assert!(reason.contains("a.info' is invalid: checksum"), "{reason}");
                assert!(reason.contains("a.info.copy' is missing"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn histories_must_agree() {
        let archive = ArchiveInfo::new(db(1, 7));
        let backup = BackupInfo::new(db(1, 7));
        assert_eq!(histories_match(&archive, &backup), None);
        let other = BackupInfo::new(db(1, 9));
        let message = histories_match(&archive, &other).unwrap();
        assert!(message.contains("system id 9"), "{message}");
    }
}
