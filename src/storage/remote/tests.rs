//! The remote driver against a far side served in this process over socket pairs: the same
//! conformance suite as posix, plus streams through filters, network compression and a far
//! side that disappears.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};

use super::request::*;
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
fn far_side_refuses_filter_numbers_that_would_size_its_buffers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), b"0123456789").unwrap();
    let storage = RemoteStorage::new(pool(dir.path().to_path_buf()), None).unwrap();
    for block_size in [0, u32::MAX] {
        let spec = FilterSpec::BlockIncr {
            prior: None,
            block_size,
            framed: false,
        };
        let err = storage.open_read_filtered("file", &[spec]).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert!(
            err.message().ends_with(&format!(
                "block size {block_size} is outside 1 to 16777216 bytes"
            )),
            "{}",
            err.message()
        );
    }
    let specs = vec![FilterSpec::Size; 17];
    let err = storage.open_read_filtered("file", &specs).err().unwrap();
    assert!(
        err.message()
            .ends_with("read with 17 filters is over the limit of 16")
    );
    // Over the far side's cap, a range is read in several requests: same bytes.
    assert_eq!(
        storage.read_range("file", 4, usize::MAX).unwrap().unwrap(),
        b"456789"
    );
    assert_eq!(
        storage.read_range("file", u64::MAX, 10).unwrap().unwrap(),
        b""
    );
}

#[test]
fn far_side_keeps_only_permission_bits_of_a_client_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let storage = RemoteStorage::new(pool(dir.path().to_path_buf()), None).unwrap();
    let options = WriteOptions {
        mode: 0o4755,
        ..WriteOptions::default()
    };
    storage.put("setuid", b"#!/bin/sh\n", &options).unwrap();
    storage.create_dir("sticky", 0o3777).unwrap();
    let mode = |name: &str| {
        std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("setuid"), 0o755);
    assert_eq!(mode("sticky"), 0o777);
}

#[test]
fn hex_round_trips() {
    let bytes: Vec<u8> = (0..=255).collect();
    assert_eq!(serve::from_hex(&serve::to_hex(&bytes)).unwrap(), bytes);
    assert!(serve::from_hex("abc").is_err());
    assert!(serve::from_hex("zz").is_err());
}

#[test]
fn storage_requests_keep_their_wire_names() {
    let path = || "x".to_string();
    let requests: Vec<StorageRequest> = vec![
        Info { path: path() }.into(),
        List { path: path() }.into(),
        ReadFile {
            path: path(),
            specs: Vec::new(),
        }
        .into(),
        ReadRange {
            path: path(),
            offset: 0,
            len: 1,
        }
        .into(),
        WriteFile {
            path: path(),
            options: WriteOptions::default(),
        }
        .into(),
        WriteAbort.into(),
        Remove { path: path() }.into(),
        RemoveDir { path: path() }.into(),
        CreateDir {
            path: path(),
            mode: 0o750,
        }
        .into(),
        SyncDir { path: path() }.into(),
        Rename {
            from: path(),
            to: path(),
        }
        .into(),
        Symlink {
            target: path(),
            path: path(),
        }
        .into(),
    ];
    let names: Vec<String> = requests.iter().map(protocol::name_of).collect();
    assert_eq!(
        names,
        [
            "storage.info",
            "storage.list",
            "storage.read",
            "storage.read_range",
            "storage.write",
            "storage.write_abort",
            "storage.remove",
            "storage.remove_dir",
            "storage.create_dir",
            "storage.sync_dir",
            "storage.rename",
            "storage.symlink",
        ]
    );
}

#[test]
fn unknown_and_malformed_storage_requests_are_answered_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("small"), b"0123456789").unwrap();
    let pool = pool(dir.path().to_path_buf());
    let mut channel = pool.take().unwrap();
    let hostile = [
        ("storage.nothing", json!({ "path": "small" })),
        ("storage.info", json!({})),
        ("storage.info", json!({ "path": 7 })),
        (
            "storage.read_range",
            json!({ "path": "small", "offset": -1, "len": 4 }),
        ),
        (
            "storage.create_dir",
            json!({ "path": "d", "mode": u64::MAX }),
        ),
        ("storage.write", json!({ "path": "new" })),
        ("storage.write_abort", json!({ "now": true })),
        ("sql.connect", Value::Null),
    ];
    for (op, args) in hostile {
        let err = channel.conn().call(op, args.clone()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{op} {args}");
        assert!(
            err.message().contains(&format!("invalid request '{op}'")),
            "{}",
            err.message()
        );
    }
    assert!(!dir.path().join("d").exists() && !dir.path().join("new").exists());
    // The same far side still answers, typed and by hand.
    let answer = channel
        .conn()
        .call(
            "storage.read_range",
            json!({ "path": "small", "offset": 8, "len": 4 }),
        )
        .unwrap();
    assert_eq!(answer, json!("3839"));
    pool.give_back(channel);
    let storage = RemoteStorage::new(pool, None).unwrap();
    assert_eq!(storage.info("small").unwrap().unwrap().size, 10);
}

/// Hostile requests to the real request loop over a repository storage: whatever the client
/// sends, the server never panics, answers each well-formed message, and nothing outside the
/// root changes.
mod props {
    use std::os::unix::net::UnixStream;

    use proptest::prelude::*;
    use serde_json::{Value, json};

    use crate::protocol::frame::{Frame, FrameType, write_frame};
    use crate::protocol::server;
    use crate::protocol::{Conn, Response};
    use crate::storage::PosixStorage;

    const OPS: &[&str] = &[
        "storage.info",
        "storage.list",
        "storage.remove",
        "storage.remove_dir",
        "storage.sync_dir",
        "storage.create_dir",
        "storage.rename",
        "storage.symlink",
        "storage.read_range",
        "storage.read",
        "storage.write",
        "storage.write_abort",
        "storage.nothing",
    ];

    fn path() -> impl Strategy<Value = Value> {
        prop_oneof![
            1 => Just(json!("")),
            1 => Just(json!("..")),
            1 => Just(json!("../outside/secret")),
            1 => Just(json!("/etc/passwd")),
            1 => Just(json!("out/secret")),
            1 => Just(json!("out")),
            // A file that exists, most often: what a hostile number does to a real read.
            6 => Just(json!("dir/file")),
            1 => Just(json!("dir")),
            1 => Just(json!("dir/../../outside")),
            1 => "[a-z./]{0,12}".prop_map(Value::from),
        ]
    }

    fn number() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!(u64::MAX)),
            Just(json!(1u64 << 62)),
            Just(json!(-1)),
            Just(json!(1.5e300)),
            Just(json!(0)),
            Just(json!(4)),
            any::<u32>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![path(), number(), Just(Value::Null), Just(json!(true))]
    }

    /// The arguments of a request: every field any request reads (the others are ignored),
    /// each a path or a number of any size; now and then one left out.
    fn args() -> impl Strategy<Value = Value> {
        let keys = prop::sample::subsequence(
            vec![
                "path", "offset", "len", "mode", "from", "to", "target", "options", "specs",
            ],
            8..=9,
        );
        let specs = prop_oneof![
            Just(json!([])),
            Just(json!([{"BlockIncr": {"prior": null, "block_size": u32::MAX}}])),
            Just(json!([{"BlockIncr": {"prior": null, "block_size": 0}}])),
            Just(json!([{"Compress": {"kind": "zst", "level": 1000}}])),
            Just(json!(vec![json!("Size"); 100])),
        ];
        let paths = proptest::collection::vec(path(), 4);
        let numbers = proptest::collection::vec(number(), 3);
        // Any kind of value where a mode is read: a string, null, a number of any size.
        let mode = value();
        (keys, paths, numbers, specs, mode).prop_map(|(keys, paths, numbers, specs, mode)| {
            let mut args = serde_json::Map::new();
            for key in keys {
                let value = match key {
                    "path" => paths[0].clone(),
                    "from" => paths[1].clone(),
                    "to" => paths[2].clone(),
                    "target" => paths[3].clone(),
                    "offset" => numbers[0].clone(),
                    "len" => numbers[1].clone(),
                    "mode" => mode.clone(),
                    "specs" => specs.clone(),
                    _ => json!({ "mode": numbers[2].clone(), "create_path": true }),
                };
                args.insert(key.to_string(), value);
            }
            Value::Object(args)
        })
    }

    fn message() -> impl Strategy<Value = Vec<u8>> {
        let request = (prop::sample::select(OPS), args())
            .prop_map(|(op, args)| serde_json::to_vec(&json!({ "op": op, "args": args })).unwrap());
        // Most requests well-formed, some with a few bytes changed.
        let flips = prop_oneof![
            3 => Just(Vec::new()),
            1 => proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..3),
        ];
        (request, flips).prop_map(|(mut bytes, flips)| {
            for (at, byte) in flips {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            bytes
        })
    }

    /// Snapshot of a directory tree, links not followed.
    fn tree(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let mut seen = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(path) = pending.pop() {
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                for entry in std::fs::read_dir(&path).unwrap() {
                    pending.push(entry.unwrap().path());
                }
                seen.push((path, Vec::new()));
            } else {
                let content = std::fs::read(&path).unwrap_or_default();
                seen.push((path, content));
            }
        }
        seen.sort();
        seen
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn hostile_requests_never_panic_or_escape(messages in proptest::collection::vec(message(), 1..6)) {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("repo");
            let outside = dir.path().join("outside");
            std::fs::create_dir_all(root.join("dir")).unwrap();
            std::fs::write(root.join("dir/file"), b"inside").unwrap();
            std::fs::create_dir_all(&outside).unwrap();
            std::fs::write(outside.join("secret"), b"secret").unwrap();
            std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
            let before = tree(&outside);

            let (a, b) = UnixStream::pair().unwrap();
            let far = std::thread::spawn(move || {
                let storage = PosixStorage::repository(root);
                let mut conn = Conn::new(Box::new(b.try_clone().unwrap()), Box::new(b), "'local'");
                server::serve(&mut conn, |conn, request| super::serve(&storage, conn, request))
            });
            // A second handle on the socket, for frames `Conn` has no method for.
            let mut raw = a.try_clone().unwrap();
            let mut local = Conn::new(Box::new(a.try_clone().unwrap()), Box::new(a), "'far'");
            'messages: for message in &messages {
                if write_frame(&mut raw, FrameType::Message, message).is_err() {
                    break;
                }
                // Answers until the response; a write that opened is ended at once, a read
                // that opened streams until its closing response.
                let text = String::from_utf8_lossy(message).to_string();
                let mut opened = false;
                loop {
                    match local.recv_or_eof() {
                        Ok(Some(Frame::Message(bytes))) => {
                            let response: Response = local.decode(&bytes).unwrap();
                            if opened {
                                break;
                            }
                            if text.contains("storage.write\"") && response == Response::Ok(Value::Null) {
                                let _ = write_frame(&mut raw, FrameType::End, &[]);
                                opened = true;
                                continue;
                            }
                            if text.contains("storage.read\"") && response == Response::Ok(json!(true)) {
                                opened = true;
                                continue;
                            }
                            break;
                        }
                        Ok(Some(_)) => continue,
                        // The server ended: only for a message that is no request.
                        Ok(None) | Err(_) => break 'messages,
                    }
                }
            }
            drop(raw);
            drop(local);
            let ended = far.join();
            prop_assert!(ended.is_ok(), "the server panicked");
            prop_assert_eq!(tree(&outside), before);
        }
    }
}
