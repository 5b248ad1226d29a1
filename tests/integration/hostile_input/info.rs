//! Info files (archive.info, backup.info, backup.manifest), what restore and verify take from
//! a manifest's numbers, and bundle range reads.

use super::*;

fn db() -> DbHistory {
    DbHistory {
        id: 1,
        version: "15".into(),
        system_id: 7_312_345_678_901_234_567,
        catalog_version: 202_209_061,
        control_version: 1300,
    }
}

fn backup_info() -> BackupInfo {
    let mut info = BackupInfo::new(db());
    info.add(BackupRecord {
        label: "20261124-100000F".into(),
        backup_type: BackupType::Full,
        prior: None,
        references: vec![],
        db_id: 1,
        timestamp_start: 1_795_000_000,
        timestamp_stop: 1_795_000_100,
        lsn_start: "0/2000028".into(),
        lsn_stop: "0/2000100".into(),
        archive_start: "000000010000000000000002".into(),
        archive_stop: "000000010000000000000002".into(),
        size: 23_000_000,
        delta: 23_000_000,
        repo_size: 3_000_000,
        repo_delta: 3_000_000,
        annotation: Default::default(),
        version: None,
        error: None,
    });
    info
}

fn file(name: &str, size: u64, repo_size: u64) -> FileEntry {
    FileEntry {
        name: name.into(),
        size,
        mtime: 1_795_000_000,
        mode: 0o600,
        user: Some("postgres".into()),
        group: Some("postgres".into()),
        checksum: "ab".repeat(32),
        repo_size,
        reference: None,
        page_errors: None,
        block: None,
        bundle_id: None,
        bundle_offset: None,
    }
}

fn manifest() -> Manifest {
    let bundled = |name: &str, offset: u64, len: u64| FileEntry {
        bundle_id: Some(1),
        bundle_offset: Some(offset),
        ..file(name, len * 2, len)
    };
    let block = FileEntry {
        block: Some(BlockRef {
            map_size: 120,
            map_checksum: "cd".repeat(32),
            holders: vec!["20261124-100000F".into()],
            stored_size: 16384,
        }),
        ..file("pg_data/base/5/16384", 16384, 900)
    };
    Manifest {
        label: "20261124-100000F_20261125-100000I".into(),
        backup_type: BackupType::Incr,
        prior: Some("20261124-100000F".into()),
        references: vec!["20261124-100000F".into()],
        db_id: 1,
        pg_version: "15".into(),
        system_id: db().system_id,
        pg_path: "/var/lib/postgresql/15/main".into(),
        compress_type: CompressType::Zst,
        timestamp_start: 1_795_000_000,
        timestamp_stop: 1_795_000_100,
        lsn_start: "0/2000028".into(),
        lsn_stop: "0/2000100".into(),
        archive_start: "000000010000000000000002".into(),
        archive_stop: "000000010000000000000002".into(),
        timeline: 1,
        data_checksums: true,
        checksum_page: true,
        online: true,
        archive_copy: false,
        databases: vec![],
        annotation: Default::default(),
        paths: vec![PathEntry {
            name: "pg_data".into(),
            mode: 0o700,
            user: Some("postgres".into()),
            group: Some("postgres".into()),
        }],
        files: vec![
            bundled("pg_data/PG_VERSION", 0, 3),
            bundled("pg_data/base/1/1", 3, 40),
            bundled("pg_data/base/1/2", 43, 21),
            FileEntry {
                reference: Some("20261124-100000F".into()),
                ..file("pg_data/global/pg_control", 8192, 300)
            },
            file("pg_data/base/1/3", 0, 0),
            block,
        ],
        links: vec![],
    }
}

/// The bundle the seed manifest's bundled entries point into.
const BUNDLE: &[u8] = b"15\nsome compressed bytes of the first relation.....the second one......";

/// Everything restore and verify take from a manifest's numbers before reading data: totals,
/// where each file is, and the bytes of each bundled file, read to the end.
fn use_manifest(repo: &dyn Storage, manifest: &Manifest) {
    let _ = (manifest.size(), manifest.delta());
    let _ = (manifest.repo_size(), manifest.repo_delta());
    let _ = Manifest::needed_sets(&manifest.files, &manifest.label);
    for file in &manifest.files {
        let stored = bundle::locate("s", manifest, file);
        let _ = bundle::decompress_specs(&stored, manifest.compress_type);
        if let Stored::Range { offset, len, .. } = stored {
            let range = Stored::Range {
                path: "bundle".into(),
                offset,
                len,
            };
            if let Ok(Some(mut reader)) = bundle::open(repo, &range) {
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
            }
        }
    }
}

/// The envelope with its content changed and the checksum recomputed.
fn reseal(content: &serde_json::Value) -> Vec<u8> {
    let canonical = serde_json::to_vec(content).unwrap();
    let checksum: String = sha2::Sha256::digest(&canonical)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    serde_json::to_vec(&serde_json::json!({"format": 1, "checksum": checksum, "content": content}))
        .unwrap()
}

/// Replaces the numbers of `value`, in document order, where `numbers` says so.
fn renumber(value: &mut serde_json::Value, numbers: &mut impl Iterator<Item = Option<u64>>) {
    match value {
        serde_json::Value::Number(n) => {
            if let Some(Some(new)) = numbers.next() {
                *n = if n.is_i64() && new > i64::MAX as u64 {
                    serde_json::Number::from(-((new & 0xffff) as i64))
                } else {
                    serde_json::Number::from(new)
                };
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| renumber(v, numbers)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|v| renumber(v, numbers)),
        _ => {}
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn info_files_never_panic(edits in edits(), random in random_bytes(), pick in 0..4u8) {
        let seeds = [
            info_file::encode(&ArchiveInfo::new(db())).unwrap(),
            info_file::encode(&backup_info()).unwrap(),
            info_file::encode(&manifest()).unwrap(),
        ];
        let bytes = match pick {
            3 => random,
            n => apply(&seeds[usize::from(n)], &edits),
        };
        bounded("info envelope", || {
            let _ = info_file::decode::<ArchiveInfo>(&bytes);
            if let Ok(info) = info_file::decode::<BackupInfo>(&bytes) {
                let _ = (info.current().is_ok(), info.latest(), info.latest_full());
            }
            let _ = info_file::decode::<Manifest>(&bytes);
        });
    }

    #[test]
    fn resealed_manifests_with_any_numbers_never_panic(
        numbers in prop::collection::vec(prop::option::weighted(0.3, interesting()), 0..200),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let repo = PosixStorage::new(dir.path().to_path_buf());
        repo.put("bundle", BUNDLE, &unsynced()).unwrap();
        let mut content = serde_json::to_value(manifest()).unwrap();
        renumber(&mut content, &mut numbers.into_iter());
        let bytes = reseal(&content);
        bounded("manifest", || {
            if let Ok(manifest) = info_file::decode::<Manifest>(&bytes) {
                use_manifest(&repo, &manifest);
            }
        });
    }

    #[test]
    fn resealed_info_files_with_any_numbers_never_panic(
        numbers in prop::collection::vec(prop::option::weighted(0.5, interesting()), 0..40),
        backup in any::<bool>(),
    ) {
        let mut content = if backup {
            serde_json::to_value(backup_info()).unwrap()
        } else {
            serde_json::to_value(ArchiveInfo::new(db())).unwrap()
        };
        renumber(&mut content, &mut numbers.into_iter());
        let bytes = reseal(&content);
        bounded("info file", || {
            if let Ok(info) = info_file::decode::<ArchiveInfo>(&bytes)
                && let Ok(db) = info.current()
            {
                let _ = db.archive_id();
            }
            if let Ok(info) = info_file::decode::<BackupInfo>(&bytes) {
                let _ = (info.current().is_ok(), info.latest(), info.latest_full());
                for record in &info.backups {
                    let _ = info.find(&record.label);
                }
            }
        });
    }

    #[test]
    fn bundle_ranges_are_bounded_by_the_bundle(
        bundle_len in 0..20_000usize,
        offset in interesting(),
        len in interesting(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let repo = PosixStorage::new(dir.path().to_path_buf());
        repo.put("bundle", &vec![7u8; bundle_len], &unsynced()).unwrap();
        let range = Stored::Range { path: "bundle".into(), offset, len };
        let read = bounded("bundle", || {
            bundle::open(&repo, &range).map(|reader| {
                let mut content = Vec::new();
                reader.map(|r| r.take(u64::MAX).read_to_end(&mut content).map(|_| content))
            })
        });
        // Whatever opens yields exactly the range, which lies inside the bundle (an empty
        // range reads nothing, wherever it claims to be).
        if let Ok(Some(Ok(content))) = read {
            prop_assert_eq!(content.len() as u64, len);
            prop_assert!(len == 0 || u128::from(offset) + u128::from(len) <= bundle_len as u128);
        }
    }
}

/// The seeds are what the writers produce and the parsers accept: the mutations start from
/// real, valid input, not from something refused at its first byte.
#[test]
fn the_seed_manifest_is_valid() {
    let bytes = info_file::encode(&manifest()).unwrap();
    assert_eq!(info_file::decode::<Manifest>(&bytes).unwrap(), manifest());
    assert_eq!(
        info_file::decode::<Manifest>(&reseal(&serde_json::to_value(manifest()).unwrap())).unwrap(),
        manifest()
    );
}

/// Found by `resealed_manifests_with_any_numbers_never_panic`: two sizes of 2^63 overflowed the
/// manifest's totals (a panic in a debug build, a wrapped total in a release one).
#[test]
fn manifest_totals_saturate() {
    let mut manifest = manifest();
    for file in &mut manifest.files {
        file.size = 1 << 63;
        file.repo_size = 1 << 63;
        file.block = None;
        file.reference = None;
    }
    assert_eq!(manifest.size(), u64::MAX);
    assert_eq!(manifest.delta(), u64::MAX);
    assert_eq!(manifest.repo_size(), u64::MAX);
    assert_eq!(manifest.repo_delta(), u64::MAX);
}
