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

/// Pseudo-random bytes that differ at every offset, so a reordered or lost piece shows.
fn numbered_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
}

#[test]
fn a_direct_write_lands_every_byte_in_order_whatever_the_pieces() {
    let (_dir, storage) = storage();
    storage.create_dir("", 0o700).unwrap();
    let content = numbered_bytes(3 * 1024 * 1024 + 12_345);
    let options = WriteOptions {
        atomic: false,
        direct: true,
        ..WriteOptions::default()
    };
    let mut writer = storage.open_write("base/1/16384", &options).unwrap();
    // Aligned pieces go to the device as they are; an odd piece sends what follows through
    // the staging buffer until it is written out; the tail ends the file unaligned.
    let mut aligned = AlignedBuf::with_capacity(64 * 1024);
    aligned.appender().extend_from_slice(&content[..65_536]);
    writer.write_all(aligned.content()).unwrap();
    writer.write_all(&content[65_536..65_536 + 100]).unwrap();
    aligned.clear();
    aligned
        .appender()
        .extend_from_slice(&content[65_636..65_636 + 40_960]);
    writer.write_all(aligned.content()).unwrap();
    for piece in content[106_596..].chunks(777_777) {
        writer.write_all(piece).unwrap();
    }
    writer.commit().unwrap();
    let on_disk = fs::read(storage.root().join("base/1/16384")).unwrap();
    assert_eq!(on_disk.len(), content.len());
    assert!(on_disk == content, "the file differs from what was written");
}

#[test]
fn a_direct_write_of_an_empty_file_commits_an_empty_file() {
    let (_dir, storage) = storage();
    storage.create_dir("", 0o700).unwrap();
    let options = WriteOptions {
        atomic: false,
        direct: true,
        ..WriteOptions::default()
    };
    let writer = storage.open_write("empty", &options).unwrap();
    writer.commit().unwrap();
    assert_eq!(fs::metadata(storage.root().join("empty")).unwrap().len(), 0);
}
