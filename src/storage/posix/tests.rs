//! The conformance suite against a temp directory, plus what only a local file system shows:
//! temp names on disk, exact modes whatever the umask, a full disk, odd names.

use std::fs;
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

#[test]
fn repository_and_data_dir_storages_pass_what_they_serve() {
    use crate::storage::conformance::{Links, conformance_with};
    let dir = tempfile::tempdir().unwrap();
    let repo = PosixStorage::repository(dir.path().join("repo"));
    conformance_with(&repo, Links::PlainNames);
    // The same tree read through a data directory storage: reads work, changes are refused.
    let data = PosixStorage::data_dir(dir.path().join("repo"));
    assert_eq!(
        data.read_all("conformance/large").unwrap().unwrap().len(),
        3 * 1024 * 1024 + 11
    );
    assert!(!data.list("conformance").unwrap().unwrap().is_empty());
    let err = data
        .put("conformance/refused", b"x", &WriteOptions::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileOpen);
    assert!(err.message().ends_with("is served read-only"), "{err}");
    assert!(!data.exists("conformance/refused").unwrap());
}

#[test]
fn remove_dir_never_follows_a_link_out_of_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let repo = PosixStorage::repository(dir.path().join("repo"));
    repo.put("t/a/file", b"x", &WriteOptions::default())
        .unwrap();
    fs::create_dir_all(dir.path().join("keep")).unwrap();
    fs::write(dir.path().join("keep/precious"), b"keep").unwrap();
    std::os::unix::fs::symlink(dir.path().join("keep"), dir.path().join("repo/t/a/out")).unwrap();
    repo.remove_dir("t").unwrap();
    assert!(!dir.path().join("repo/t").exists());
    assert_eq!(fs::read(dir.path().join("keep/precious")).unwrap(), b"keep");
}

#[test]
fn a_repository_refuses_links_that_lead_out_and_follows_those_inside() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let repo = PosixStorage::repository(root.clone());
    repo.put(
        "backup/demo/20261204-101010F/backup.manifest",
        b"m",
        &WriteOptions::default(),
    )
    .unwrap();
    repo.symlink("20261204-101010F", "backup/demo/latest")
        .unwrap();
    assert_eq!(
        repo.read_all("backup/demo/latest/backup.manifest")
            .unwrap()
            .unwrap(),
        b"m"
    );
    fs::write(dir.path().join("secret"), b"s").unwrap();
    std::os::unix::fs::symlink(dir.path(), root.join("out")).unwrap();
    std::os::unix::fs::symlink("..", root.join("up")).unwrap();
    for path in ["out/secret", "up/secret"] {
        let err = repo.read_all(path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FileOpen, "{err}");
        assert!(
            err.message().ends_with(&format!(
                "path leads out of the storage root '{}'",
                root.display()
            )),
            "{err}"
        );
    }
    // The same links, through a storage that follows links (a restore's target), still work.
    let follow = PosixStorage::new(root.clone());
    assert_eq!(follow.read_all("out/secret").unwrap().unwrap(), b"s");
}

#[test]
fn a_link_swapped_in_while_reading_never_leads_out() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    fs::create_dir_all(root.join("inside")).unwrap();
    fs::write(root.join("inside/secret"), b"inside").unwrap();
    fs::create_dir_all(dir.path().join("outside")).unwrap();
    fs::write(dir.path().join("outside/secret"), b"outside").unwrap();
    let repo = PosixStorage::repository(root.clone());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Flips 'sw' between a directory inside and a link to the directory outside, as fast as
    // it can, while the storage reads through it.
    let flipper = {
        let (stop, root, outside) = (stop.clone(), root.clone(), dir.path().join("outside"));
        std::thread::spawn(move || {
            let mut flips = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = fs::rename(root.join("inside"), root.join("sw"));
                // Each state is held for a moment, so that a loaded machine's reader meets both.
                std::thread::yield_now();
                let _ = fs::rename(root.join("sw"), root.join("inside"));
                let _ = std::os::unix::fs::symlink(&outside, root.join("sw"));
                std::thread::yield_now();
                let _ = fs::remove_file(root.join("sw"));
                flips += 1;
            }
            flips
        })
    };
    let (mut inside, mut refused) = (0, 0);
    // At least 20,000 reads, and on until both states were met (bounded).
    for attempt in 0..2_000_000 {
        if attempt >= 20_000 && inside > 0 && refused > 0 {
            break;
        }
        match repo.read_all("sw/secret") {
            Ok(Some(bytes)) => {
                assert_eq!(bytes, b"inside", "read through a swapped-in link");
                inside += 1;
            }
            Ok(None) => {}
            Err(err) => {
                assert!(
                    err.message().contains("leads out of the storage root"),
                    "{err}"
                );
                refused += 1;
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(flipper.join().unwrap() > 0);
    // Both states were met: the race was real.
    assert!(
        inside > 0 && refused > 0,
        "inside {inside}, refused {refused}"
    );
}

#[test]
fn a_repository_root_is_never_removed_itself() {
    let dir = tempfile::tempdir().unwrap();
    let repo = PosixStorage::repository(dir.path().join("repo"));
    repo.put("a/file", b"x", &WriteOptions::default()).unwrap();
    let err = repo.remove_dir("").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileRemove);
    assert!(
        err.message()
            .ends_with("the storage root itself is not removed"),
        "{err}"
    );
    assert_eq!(repo.read_all("a/file").unwrap().unwrap(), b"x");
    // A restore target (following links, the command's own path) may still be removed whole.
    let target = PosixStorage::new(dir.path().join("repo"));
    target.remove_dir("").unwrap();
    assert!(!dir.path().join("repo").exists());
}
