//! The conformance suite against a temp directory, plus what only a local file system shows:
//! temp names on disk, exact modes whatever the umask, a full disk, odd names.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::storage::conformance::conformance;

fn storage() -> (tempfile::TempDir, PosixStorage) {
    let dir = tempfile::tempdir().unwrap();
    let storage = PosixStorage::new(dir.path().join("root"));
    (dir, storage)
}

#[test]
fn posix_storage_passes_the_conformance_suite() {
    let (_dir, storage) = storage();
    conformance(&storage);
}

#[test]
fn an_atomic_write_lives_under_a_temp_name_until_commit() {
    let (_dir, storage) = storage();
    let mut writer = storage
        .open_write(
            "archive/db/000000010000000000000001",
            &WriteOptions::default(),
        )
        .unwrap();
    writer.write_all(b"wal").unwrap();
    let on_disk: Vec<String> = fs::read_dir(storage.root().join("archive/db"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(on_disk, ["000000010000000000000001.pgkeep.tmp"]);
    writer.commit().unwrap();
    let on_disk: Vec<String> = fs::read_dir(storage.root().join("archive/db"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(on_disk, ["000000010000000000000001"]);
}

#[test]
fn modes_are_exact_whatever_the_umask() {
    let (_dir, storage) = storage();
    let options = WriteOptions {
        mode: 0o666,
        ..WriteOptions::default()
    };
    storage.put("a/b/file", b"x", &options).unwrap();
    storage.create_dir("group/writable", 0o770).unwrap();
    let mode = |path: &str| {
        fs::metadata(storage.root().join(path))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("a/b/file"), 0o666);
    assert_eq!(mode("a/b"), 0o750, "parents made by create_path");
    assert_eq!(mode("group"), 0o770);
    assert_eq!(mode("group/writable"), 0o770);
}

#[test]
fn a_full_disk_is_a_write_error_with_the_path() {
    // /dev/full fails every write with ENOSPC. Reach it through a link in the temp directory so
    // that dropping the writer removes only the link.
    let (dir, storage) = storage();
    fs::create_dir_all(storage.root()).unwrap();
    std::os::unix::fs::symlink("/dev/full", storage.root().join("full")).unwrap();
    let options = WriteOptions {
        atomic: false,
        ..WriteOptions::default()
    };
    let mut writer = storage.open_write("full", &options).unwrap();
    let err = writer.write_all(&[0; 4096]).unwrap_err();
    let err = crate::io::stream::from_io_error(err, ErrorKind::FileWrite, "write");
    assert_eq!(err.kind(), ErrorKind::FileWrite);
    assert_eq!(
        err.message(),
        format!(
            "unable to write '{}/root/full': [28] No space left on device",
            dir.path().display()
        )
    );
    drop(writer);
    assert!(fs::symlink_metadata("/dev/full").is_ok());
}

#[test]
fn errors_carry_the_absolute_path() {
    let (dir, storage) = storage();
    storage.put("file", b"x", &WriteOptions::default()).unwrap();
    let err = storage.open_read("file/below").unwrap();
    assert!(err.is_none(), "a path below a file does not exist");
    let err = storage.list("file").unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "unable to list '{}/root/file': [20] Not a directory",
            dir.path().display()
        )
    );
    let err = storage.open_read("").err().unwrap();
    assert_eq!(err.kind(), ErrorKind::FileOpen);
    assert!(
        err.message().ends_with("for read: [21] Is a directory"),
        "{err}"
    );
    assert_eq!(
        storage.describe(""),
        format!("{}/root", dir.path().display())
    );
}

#[test]
fn names_that_are_not_utf8_are_refused_not_mangled() {
    let (_dir, storage) = storage();
    storage.create_dir("odd", 0o750).unwrap();
    let name = std::ffi::OsStr::from_bytes(b"bad\xffname");
    fs::write(storage.root().join("odd").join(name), b"x").unwrap();
    let err = storage.list("odd").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileInvalid);
    assert!(err.message().contains("is not valid UTF-8"), "{err}");
}

#[test]
fn a_symlink_never_replaces_a_file_or_directory() {
    let (_dir, storage) = storage();
    storage.put("data", b"x", &WriteOptions::default()).unwrap();
    let err = storage.symlink("elsewhere", "data").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileWrite);
    assert!(err.message().ends_with("[17] File exists"), "{err}");
    assert_eq!(storage.read_all("data").unwrap().unwrap(), b"x");
}
