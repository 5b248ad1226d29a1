//! Manifests for the restore unit tests: a PostgreSQL 15 backup set with no files, which each
//! test fills with the entries it needs.

use crate::io::CompressType;
use crate::repo::manifest::{FileEntry, LinkEntry, PathEntry};
use crate::repo::{BackupType, Manifest};

pub fn manifest() -> Manifest {
    Manifest {
        label: "L".into(),
        backup_type: BackupType::Full,
        prior: None,
        references: vec![],
        db_id: 1,
        pg_version: "15".into(),
        system_id: 1,
        pg_path: "/pg".into(),
        compress_type: CompressType::None,
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
        paths: vec![path("pg_data")],
        files: vec![],
        links: vec![],
    }
}

pub fn path(name: &str) -> PathEntry {
    PathEntry {
        name: name.into(),
        mode: 0o700,
        user: None,
        group: None,
    }
}

pub fn file(name: &str, size: u64) -> FileEntry {
    FileEntry {
        name: name.into(),
        size,
        mtime: 1_700_000_000,
        mode: 0o600,
        user: None,
        group: None,
        checksum: String::new(),
        repo_size: size,
        reference: None,
        page_errors: None,
        block: None,
        bundle_id: None,
        bundle_offset: None,
    }
}

pub fn link(name: &str, target: &str) -> LinkEntry {
    LinkEntry {
        name: name.into(),
        target: target.into(),
    }
}
