//! The remote driver against a far side served in this process over socket pairs: the same
//! conformance suite as posix, plus streams through filters, network compression and a far
//! side that disappears.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;

use super::*;
use crate::protocol::server;
use crate::storage::PosixStorage;
use crate::storage::conformance::conformance;

/// A pool whose channels are each served by a thread running the storage handler over
/// `root`.
fn pool(root: PathBuf) -> Arc<Pool> {
    let connector = move || {
        let (a, b) = UnixStream::pair().unwrap();
        let root = root.clone();
        std::thread::spawn(move || {
            let storage = PosixStorage::new(root.clone());
            let mut conn = Conn::new(Box::new(b.try_clone().unwrap()), Box::new(b), "'local'");
            let welcome = json!({ "root": root.display().to_string() });
            server::greet(&mut conn, welcome).unwrap();
            let _ = server::serve(&mut conn, |conn, request| serve(&storage, conn, request));
        });
        Channel::over(Conn::new(
            Box::new(a.try_clone().unwrap()),
            Box::new(a),
            "'postgres@far'",
        ))
    };
    Pool::new("'postgres@far'".into(), Box::new(connector)).unwrap()
}

use crate::protocol::Conn;

#[test]
fn remote_storage_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let storage = RemoteStorage::new(pool(dir.path().to_path_buf()), None).unwrap();
    conformance(&storage);
}

#[test]
fn filters_run_on_the_far_side_and_results_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i / 7 % 256) as u8).collect();
    std::fs::write(dir.path().join("file"), &content).unwrap();
    let storage = RemoteStorage::new(pool(dir.path().to_path_buf()), None).unwrap();
    let specs = [
        FilterSpec::Size,
        FilterSpec::Hash,
        FilterSpec::Compress {
            kind: CompressType::Zst,
            level: 3,
        },
        FilterSpec::Size,
    ];
    let mut reader = storage.open_read_filtered("file", &specs).unwrap().unwrap();
    let mut compressed = Vec::new();
    reader.read_to_end(&mut compressed).unwrap();
    let results = reader.results().unwrap();
    assert_eq!(results[0], FilterResult::Size(content.len() as u64));
    assert_eq!(
        results[1],
        FilterResult::Hash(crate::io::sha256_hex(&content))
    );
    assert_eq!(results[2], FilterResult::Size(compressed.len() as u64));
    assert!(compressed.len() < content.len() / 10);
    assert_eq!(zstd::decode_all(compressed.as_slice()).unwrap(), content);
    assert!(
        storage
            .open_read_filtered("missing", &specs)
            .unwrap()
            .is_none()
    );
}

#[test]
fn network_compression_is_transparent() {
    let dir = tempfile::tempdir().unwrap();
    let content = vec![7u8; 2_000_000];
    std::fs::write(dir.path().join("file"), &content).unwrap();
    let network = Some((CompressType::Gz, 3));
    let storage = RemoteStorage::new(pool(dir.path().to_path_buf()), network).unwrap();
    let mut reader = storage
        .open_read_filtered("file", &[FilterSpec::Size])
        .unwrap()
        .unwrap();
    let mut got = Vec::new();
    reader.read_to_end(&mut got).unwrap();
    assert_eq!(got, content);
    assert_eq!(
        reader.results().unwrap(),
        vec![FilterResult::Size(content.len() as u64)]
    );
}

#[test]
fn read_range_and_describe_use_the_far_root() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), b"0123456789").unwrap();
    let storage = RemoteStorage::new(pool(dir.path().to_path_buf()), None).unwrap();
    assert_eq!(storage.read_range("f", 3, 4).unwrap().unwrap(), b"3456");
    assert_eq!(storage.read_range("f", 8, 4).unwrap().unwrap(), b"89");
    assert!(storage.read_range("g", 0, 1).unwrap().is_none());
    assert_eq!(
        storage.describe("a/b"),
        format!("{}/a/b", dir.path().display())
    );
}

#[test]
fn far_side_errors_keep_their_kind_and_name_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let storage = RemoteStorage::new(pool(dir.path().to_path_buf()), None).unwrap();
    let err = storage.list("../escape").unwrap_err();
    assert!(
        err.message()
            .starts_with("raised from remote on 'postgres@far': "),
        "{}",
        err.message()
    );
    // The channel is still usable after an error the far side reported.
    assert!(storage.info("nothing").unwrap().is_none());
}

#[test]
fn hex_round_trips() {
    let bytes: Vec<u8> = (0..=255).collect();
    assert_eq!(serve::from_hex(&serve::to_hex(&bytes)).unwrap(), bytes);
    assert!(serve::from_hex("abc").is_err());
    assert!(serve::from_hex("zz").is_err());
}
