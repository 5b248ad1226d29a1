//! The conformance suite every storage driver must pass.
//!
//! `conformance(storage)` checks the contract of the `Storage` trait through the trait alone:
//! a file appears only on commit, a dropped write leaves nothing behind, overwrite is atomic,
//! missing entries are `None` rather than errors, and failures carry the kind and the path.
//! It panics on the first broken rule (it is test code, compiled for tests or with the `testing`
//! feature). Give it a driver whose root is empty and writable; it works under `conformance/`.

// Test code compiled into the library for other crates' tests (the `testing` feature): a panic
// is how it reports a broken rule, so unwrap and expect are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};

use crate::error::ErrorKind;
use crate::storage::{FileType, Storage, WriteOptions};

/// Which link targets a driver accepts from `symlink`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Any target (a restore's links to tablespaces and relocated directories).
    Any,
    /// Only the name of an entry in the link's own directory (a repository's `latest`).
    PlainNames,
}

/// Runs every check against `storage`, which accepts any link target.
pub fn conformance(storage: &dyn Storage) {
    conformance_with(storage, Links::Any);
}

/// Runs every check against `storage`, whose link targets are limited as `links` says.
pub fn conformance_with(storage: &dyn Storage, links: Links) {
    write_appears_only_on_commit(storage);
    dropped_write_leaves_nothing(storage);
    overwrite_is_atomic(storage);
    in_place_write(storage);
    mode_and_mtime_are_set(storage);
    missing_entries_are_none(storage);
    list_reports_types(storage);
    remove_and_remove_dir(storage, links);
    rename_and_symlink(storage);
    large_file_streams(storage);
    failures_name_the_path(storage);
    paths_cannot_escape_the_root(storage);
}

fn names(storage: &dyn Storage, path: &str) -> Vec<String> {
    let mut names: Vec<String> = storage
        .list(path)
        .unwrap()
        .unwrap_or_default()
        .into_iter()
        .map(|info| info.name)
        .collect();
    names.sort();
    names
}

fn read(storage: &dyn Storage, path: &str) -> Vec<u8> {
    storage.read_all(path).unwrap().expect(path)
}

fn write_appears_only_on_commit(storage: &dyn Storage) {
    let mut writer = storage
        .open_write("conformance/new/a.txt", &WriteOptions::default())
        .unwrap();
    writer.write_all(b"hello").unwrap();
    assert!(storage.info("conformance/new/a.txt").unwrap().is_none());
    writer.commit().unwrap();
    let info = storage.info("conformance/new/a.txt").unwrap().unwrap();
    assert_eq!(info.file_type, FileType::File);
    assert_eq!(info.size, 5);
    assert_eq!(info.name, "conformance/new/a.txt");
    assert_eq!(read(storage, "conformance/new/a.txt"), b"hello");
    assert_eq!(names(storage, "conformance/new"), ["a.txt"]);
    assert!(storage.exists("conformance/new/a.txt").unwrap());

    storage
        .put("conformance/new/empty", b"", &WriteOptions::default())
        .unwrap();
    assert_eq!(read(storage, "conformance/new/empty"), b"");
}

fn dropped_write_leaves_nothing(storage: &dyn Storage) {
    let mut writer = storage
        .open_write("conformance/drop/gone", &WriteOptions::default())
        .unwrap();
    writer.write_all(&[1; 1000]).unwrap();
    drop(writer);
    assert!(storage.info("conformance/drop/gone").unwrap().is_none());
    // No temp file either: the directory (created for the write) is empty.
    assert_eq!(names(storage, "conformance/drop"), Vec::<String>::new());
}

fn overwrite_is_atomic(storage: &dyn Storage) {
    let path = "conformance/over/file";
    storage
        .put(path, b"old content", &WriteOptions::default())
        .unwrap();
    let mut writer = storage.open_write(path, &WriteOptions::default()).unwrap();
    writer.write_all(b"new").unwrap();
    assert_eq!(read(storage, path), b"old content");
    writer.commit().unwrap();
    assert_eq!(read(storage, path), b"new");

    // An overwrite given up on keeps the old file intact.
    let mut writer = storage.open_write(path, &WriteOptions::default()).unwrap();
    writer.write_all(b"abandoned").unwrap();
    drop(writer);
    assert_eq!(read(storage, path), b"new");
    assert_eq!(names(storage, "conformance/over"), ["file"]);
}

fn in_place_write(storage: &dyn Storage) {
    let options = WriteOptions {
        atomic: false,
        ..WriteOptions::default()
    };
    storage
        .put("conformance/place/f", b"in place", &options)
        .unwrap();
    assert_eq!(read(storage, "conformance/place/f"), b"in place");
    let mut writer = storage
        .open_write("conformance/place/dropped", &options)
        .unwrap();
    writer.write_all(b"partial").unwrap();
    drop(writer);
    assert_eq!(names(storage, "conformance/place"), ["f"]);
}

fn mode_and_mtime_are_set(storage: &dyn Storage) {
    for (mode, mtime) in [(0o600, 1_500_000_000), (0o644, 86_400), (0o640, -3600)] {
        let options = WriteOptions {
            mode,
            mtime: Some(mtime),
            ..WriteOptions::default()
        };
        storage.put("conformance/meta/f", b"x", &options).unwrap();
        let info = storage.info("conformance/meta/f").unwrap().unwrap();
        assert_eq!(info.mode, mode, "mode {mode:o}");
        assert_eq!(info.mtime, mtime);
    }
    storage.create_dir("conformance/meta/dir", 0o700).unwrap();
    let info = storage.info("conformance/meta/dir").unwrap().unwrap();
    assert_eq!(info.file_type, FileType::Path);
    assert_eq!(info.mode, 0o700);
    // Creating an existing directory is fine.
    storage.create_dir("conformance/meta/dir", 0o700).unwrap();
    storage.sync_dir("conformance/meta/dir").unwrap();
}

fn missing_entries_are_none(storage: &dyn Storage) {
    assert!(storage.info("conformance/nothing").unwrap().is_none());
    assert!(storage.list("conformance/nothing").unwrap().is_none());
    assert!(storage.open_read("conformance/nothing").unwrap().is_none());
    assert!(storage.read_all("conformance/nothing/x").unwrap().is_none());
    assert!(!storage.exists("conformance/nothing").unwrap());
}

fn list_reports_types(storage: &dyn Storage) {
    storage
        .put("conformance/kinds/file", b"12345", &WriteOptions::default())
        .unwrap();
    storage.create_dir("conformance/kinds/dir", 0o750).unwrap();
    storage.symlink("file", "conformance/kinds/link").unwrap();
    let mut list = storage.list("conformance/kinds").unwrap().unwrap();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    let kinds: Vec<(&str, FileType)> = list
        .iter()
        .map(|info| (info.name.as_str(), info.file_type))
        .collect();
    assert_eq!(
        kinds,
        [
            ("dir", FileType::Path),
            ("file", FileType::File),
            ("link", FileType::Link)
        ]
    );
    assert_eq!(list[1].size, 5);
    assert_eq!(list[2].link_target.as_deref(), Some("file"));

    let err = storage.list("conformance/kinds/file").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PathOpen);
    assert!(
        err.message()
            .contains(&storage.describe("conformance/kinds/file"))
    );
}

fn remove_and_remove_dir(storage: &dyn Storage, links: Links) {
    let options = WriteOptions::default();
    for path in ["t/a/b/c/1", "t/a/b/2", "t/a/3", "t/4"] {
        storage
            .put(&format!("conformance/{path}"), b"data", &options)
            .unwrap();
    }
    // A link into a directory outside the tree: removing the tree must not follow it.
    storage
        .put("conformance/keep/precious", b"keep", &options)
        .unwrap();
    let linked = storage.symlink("../../keep", "conformance/t/a/keep-link");
    match links {
        Links::Any => linked.unwrap(),
        Links::PlainNames => {
            let err = linked.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::FileWrite, "{err}");
            assert!(
                err.message()
                    .contains("target '../../keep' is not the name of an entry"),
                "{err}"
            );
            // A link within the tree, to a name beside it, is removed with it.
            storage.symlink("b", "conformance/t/a/keep-link").unwrap();
        }
    }
    storage.remove("conformance/t/4").unwrap();
    storage.remove("conformance/t/4").unwrap();
    assert!(!storage.exists("conformance/t/4").unwrap());
    storage.remove_dir("conformance/t/a").unwrap();
    assert!(!storage.exists("conformance/t/a").unwrap());
    assert_eq!(names(storage, "conformance/t"), Vec::<String>::new());
    storage.remove_dir("conformance/t/a").unwrap();
    storage.remove_dir("conformance/never").unwrap();
    assert_eq!(read(storage, "conformance/keep/precious"), b"keep");
}

fn rename_and_symlink(storage: &dyn Storage) {
    let options = WriteOptions::default();
    storage
        .put("conformance/mv/from", b"moved", &options)
        .unwrap();
    storage.create_dir("conformance/mv/sub", 0o750).unwrap();
    storage
        .rename("conformance/mv/from", "conformance/mv/sub/to")
        .unwrap();
    assert!(!storage.exists("conformance/mv/from").unwrap());
    assert_eq!(read(storage, "conformance/mv/sub/to"), b"moved");
    let err = storage
        .rename("conformance/mv/from", "conformance/mv/again")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileMissing);

    storage.symlink("sub", "conformance/mv/latest").unwrap();
    storage.symlink("other", "conformance/mv/latest").unwrap();
    let info = storage.info("conformance/mv/latest").unwrap().unwrap();
    assert_eq!(info.file_type, FileType::Link);
    assert_eq!(info.link_target.as_deref(), Some("other"));
    assert_eq!(names(storage, "conformance/mv"), ["latest", "sub"]);
}

fn large_file_streams(storage: &dyn Storage) {
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 11).map(|i| (i % 253) as u8).collect();
    let mut writer = storage
        .open_write("conformance/large", &WriteOptions::default())
        .unwrap();
    for chunk in data.chunks(100_000) {
        writer.write_all(chunk).unwrap();
    }
    writer.commit().unwrap();
    let mut reader = storage.open_read("conformance/large").unwrap().unwrap();
    let mut back = Vec::new();
    let mut buffer = vec![0; 65536];
    loop {
        let read = reader.read(&mut buffer).unwrap();
        if read == 0 {
            break;
        }
        back.extend_from_slice(&buffer[..read]);
    }
    assert!(back == data, "large file differs");
    assert_eq!(
        storage.info("conformance/large").unwrap().unwrap().size,
        data.len() as u64
    );
}

fn failures_name_the_path(storage: &dyn Storage) {
    // A parent that is a regular file fails for every user, root included.
    storage
        .put(
            "conformance/plain",
            b"not a directory",
            &WriteOptions::default(),
        )
        .unwrap();
    for create_path in [false, true] {
        let options = WriteOptions {
            create_path,
            ..WriteOptions::default()
        };
        let err = storage
            .open_write("conformance/plain/child", &options)
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::FileOpen, "{err}");
        let expected = format!(
            "unable to open '{}' for write: ",
            storage.describe("conformance/plain/child")
        );
        // Contained rather than leading: a remote driver says which host raised it first.
        assert!(err.message().contains(&expected), "{err}");
    }
    let options = WriteOptions {
        create_path: false,
        ..WriteOptions::default()
    };
    let err = storage
        .open_write("conformance/no-parent/child", &options)
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::FileOpen);
    assert!(
        err.message().ends_with("[2] No such file or directory"),
        "{err}"
    );

    let err = storage
        .create_dir("conformance/plain/sub", 0o750)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PathCreate, "{err}");
    let err = storage.remove_dir("conformance/plain").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileRemove, "{err}");
}

fn paths_cannot_escape_the_root(storage: &dyn Storage) {
    for path in ["/etc/passwd", "../outside", "conformance/../../x"] {
        let err = storage.info(path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Assert, "{path}");
        let err = storage
            .open_write(path, &WriteOptions::default())
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::Assert, "{path}");
    }
}
