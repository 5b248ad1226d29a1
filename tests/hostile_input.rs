//! Hostile input for every parser of untrusted bytes pgkeep owns on the repository and
//! PostgreSQL side (issue 13): configuration files (INI and the options they set), the info
//! file envelope (archive.info, backup.info, backup.manifest) and what is read from a manifest
//! (sizes, bundle ranges), block maps of every version, bundles, pg_control of every supported
//! version, WAL segment headers and names, and timeline `.history` files.
//!
//! Each parser gets pure random bytes and real valid bytes mutated (bits flipped, bytes
//! inserted, deleted, overwritten with interesting numbers, the tail cut), and where the
//! format carries its own checksum, the checksum recomputed after mutating, as anyone who can
//! write the repository can. A parser may refuse anything; it must not panic, and it must not
//! allocate more than [`LIMIT`] at a time: this binary's global allocator tracks the bytes
//! each thread holds, and every case asserts the peak it reached. The case count is bounded so
//! the default suite stays fast; `PROPTEST_CASES=100000` runs longer (docs/fuzzing.md).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Read;
use std::path::Path;

use proptest::prelude::*;
use sha2::Digest;

use pgkeep::io::block_incr::{BlockHashes, BlockIncrResult};
use pgkeep::io::{CompressType, FilterChain, FilterSpec, stream};
use pgkeep::pg::history;
use pgkeep::pg::wal::{WalFileKind, WalHeader, WalSegment};
use pgkeep::pg::{ControlData, PgVersion, control_layout::ControlLayout};
use pgkeep::repo::block_map::BlockMap;
use pgkeep::repo::block_write::write_blocks;
use pgkeep::repo::bundle::{self, Stored};
use pgkeep::repo::manifest::{BlockRef, FileEntry, Manifest, PathEntry};
use pgkeep::repo::{ArchiveInfo, BackupInfo, BackupRecord, BackupType, DbHistory, info_file};
use pgkeep::storage::{PosixStorage, Storage, WriteOptions};

/// The most bytes one parse may hold at once, over what its thread held before.
const LIMIT: isize = 64 << 20;

/// Counts, per thread, the bytes allocated and not yet freed, and the peak of that count.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    // `try_with`: the allocator also runs while a thread's locals are torn down.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is passed to the system allocator unchanged; only counters are updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `parse` and asserts it never held more than [`LIMIT`] bytes at once.
#[track_caller]
fn bounded<T>(what: &str, parse: impl FnOnce() -> T) -> T {
    let start = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(start));
    let out = parse();
    let peak = PEAK.with(Cell::get) - start;
    assert!(peak <= LIMIT, "{what}: {peak} bytes held at once");
    out
}

fn config() -> ProptestConfig {
    // PROPTEST_CASES overrides this for a longer run.
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One change to a byte string. Positions are taken modulo the length.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
    /// A number that is often a boundary (0, 1, 2^31, 2^32-1, 2^63, ...), little-endian.
    Number(usize, u64, u8),
}

fn interesting() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(0x7fff_ffff),
        Just(0xffff_ffff),
        Just(1 << 32),
        Just(1 << 62),
        Just((1 << 63) + 5),
        Just(u64::MAX),
        any::<u64>(),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, bits)| Edit::Flip(at, bits)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Edit::Insert(at, bytes)),
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| Edit::Delete(at, len)),
        any::<usize>().prop_map(Edit::Truncate),
        (
            any::<usize>(),
            interesting(),
            prop_oneof![Just(2u8), Just(4), Just(8)]
        )
            .prop_map(|(at, value, width)| Edit::Number(at, value, width)),
    ]
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(edit(), 1..6)
}

fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for edit in edits {
        let len = bytes.len().max(1);
        match edit {
            Edit::Flip(at, bits) => {
                if let Some(b) = bytes.get_mut(at % len) {
                    *b ^= bits;
                }
            }
            Edit::Insert(at, new) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, new.iter().copied());
            }
            Edit::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
            Edit::Truncate(at) => bytes.truncate(at % len),
            Edit::Number(at, value, width) => {
                let width = usize::from(*width);
                if bytes.len() >= width {
                    let at = at % (bytes.len() - width + 1);
                    bytes[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
                }
            }
        }
    }
    bytes
}

fn random_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..2048)
}

fn fixture(major: u32, name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pg")
        .join(major.to_string())
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const MAJORS: std::ops::RangeInclusive<u32> = 10..=18;

// ---------------------------------------------------------------------------------------------
// Configuration files.

const CONFIG: &str = "[global]\nrepo1-path=/var/lib/pgkeep\nrepo1-retention-full=2\n\
    process-max=4\nbuffer-size=1MiB\nlog-level-console=info\nstart-fast=y\n\
    compress-type=zst\nrecovery-option=a=b\n\n[demo]\npg1-path=/var/lib/postgresql/15/main\n\
    pg1-port=5432\n\n[demo:backup]\ntype=full\n";

fn parse_config(dir: &Path, bytes: &[u8]) {
    let file = dir.join("pgkeep.conf");
    std::fs::write(&file, bytes).unwrap();
    let args: Vec<String> = [
        format!("--config={}", file.display()),
        "--stanza=demo".to_string(),
        "backup".to_string(),
    ]
    .into();
    let _ = bounded("config", || pgkeep::config::parse(&args, &[]).map(drop));
}

// ---------------------------------------------------------------------------------------------
// Info files and manifests.

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

// ---------------------------------------------------------------------------------------------
// Block maps.

const BS: u32 = 8192;

fn result(hashes: &[u128], stored: &[u32], deltas: &[bool]) -> BlockIncrResult {
    BlockIncrResult {
        hashes: BlockHashes(hashes.to_vec()),
        stored: stored.to_vec(),
        deltas: deltas.to_vec(),
    }
}

/// The three forms of a map: a complete version 2 map of set `F`, a sparse (version 3) map of
/// set `I` on top of it, and a version 1 map as the first release wrote it.
struct Maps {
    full: Vec<u8>,
    sparse: Vec<u8>,
    v1: Vec<u8>,
}

fn map_path(label: &str) -> String {
    format!("backup/s/{label}/pg_data/f.map")
}

/// Files of a test repository: written atomically but not synced, so thousands of cases do
/// not wait for the disk.
fn unsynced() -> WriteOptions {
    WriteOptions {
        sync_file: false,
        sync_path: false,
        ..WriteOptions::default()
    }
}

/// The seed maps, made once.
static MAPS: std::sync::LazyLock<Maps> = std::sync::LazyLock::new(maps);

fn maps() -> Maps {
    let dir = tempfile::tempdir().unwrap();
    let repo = PosixStorage::new(dir.path().to_path_buf());
    // A backup creates a set's directories before writing its maps into them.
    for label in ["F", "I"] {
        std::fs::create_dir_all(dir.path().join(format!("backup/s/{label}/pg_data"))).unwrap();
    }
    let hashes: Vec<u128> = (1..=40).map(|n| n * 0x1234_5678_9abc_def1).collect();
    let all: Vec<u32> = (0..40).collect();
    let full = BlockMap::next(None, "F", &result(&hashes, &all, &[]), BS).unwrap();
    let (_, checksum) = full.save(&repo, &map_path("F")).unwrap();
    let mut changed = hashes.clone();
    changed[3] ^= 1;
    changed[17] ^= 1;
    let incr = result(&changed, &[3, 17], &[true, false]);
    let next = BlockMap::next(Some(&full), "I", &incr, BS).unwrap();
    next.save_next(
        &repo,
        &map_path("I"),
        Some((&full, "F", &checksum)),
        "I",
        &incr,
    )
    .unwrap();
    let read = |label| std::fs::read(dir.path().join(map_path(label))).unwrap();
    // Version 1: the shared header, then per block its hash, label index and position.
    let mut v1 = b"PGKEEPBM".to_vec();
    v1.extend_from_slice(&1u16.to_le_bytes());
    v1.extend_from_slice(&BS.to_le_bytes());
    v1.extend_from_slice(&1u16.to_le_bytes());
    v1.extend_from_slice(&1u16.to_le_bytes());
    v1.extend_from_slice(b"F");
    v1.extend_from_slice(&40u32.to_le_bytes());
    for (n, hash) in hashes.iter().enumerate() {
        v1.extend_from_slice(&hash.to_le_bytes());
        v1.extend_from_slice(&0u16.to_le_bytes());
        v1.extend_from_slice(&(n as u32).to_le_bytes());
    }
    let digest = sha2::Sha256::digest(&v1);
    v1.extend_from_slice(&digest);
    Maps {
        full: read("F"),
        sparse: read("I"),
        v1,
    }
}

/// The map with its SHA-256 trailer recomputed over the mutated body.
fn retrail(bytes: &[u8]) -> Vec<u8> {
    let body = &bytes[..bytes.len().saturating_sub(32)];
    let mut out = body.to_vec();
    out.extend_from_slice(&sha2::Sha256::digest(body));
    out
}

/// Loads `label`'s map as restore and verify do (a sparse one through its base).
fn load_map(repo: &PosixStorage, label: &str) {
    let _ = bounded("block map", || {
        BlockMap::load(repo, "s", label, "pg_data/f", None).map(|map| {
            let _ = map.needed();
            for n in 0..map.blocks.len() {
                let _ = map.layers(n);
            }
        })
    });
}

/// The parts of a version 2 or 3 map, built rather than mutated, so that the columns
/// decompress and the decoder's checks of counts against columns are what is tested.
#[derive(Debug, Clone)]
struct Parts {
    block_size: u32,
    /// Per block its layer count; per layer its holder and position gap.
    counts: Vec<u8>,
    holders: Vec<u16>,
    gaps: Vec<u32>,
    /// Counts written in the header instead of the real ones.
    blocks: Option<u32>,
    layers: Option<u32>,
}

fn small_u32() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 0..4u32, 1 => interesting().prop_map(|n| n as u32)]
}

fn parts() -> impl Strategy<Value = Parts> {
    (
        prop_oneof![3 => Just(BS), 1 => interesting().prop_map(|n| n as u32)],
        prop::collection::vec(prop_oneof![4 => 1..4u8, 1 => any::<u8>()], 0..40),
        prop::collection::vec(prop_oneof![4 => 0..3u16, 1 => any::<u16>()], 0..120),
        prop::collection::vec(small_u32(), 0..120),
        prop::option::weighted(0.2, small_u32()),
        prop::option::weighted(0.2, small_u32()),
    )
        .prop_map(
            |(block_size, counts, holders, gaps, blocks, layers)| Parts {
                block_size,
                counts,
                holders,
                gaps,
                blocks,
                layers,
            },
        )
}

fn text(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u16).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// A version 2 map of set `F` from `parts`, its trailer right.
fn build_v2(parts: &Parts) -> Vec<u8> {
    let layers: usize = parts.counts.iter().map(|c| usize::from(*c)).sum();
    let mut columns = Vec::new();
    for n in 0..parts.counts.len() {
        columns.extend_from_slice(&(n as u128 * 0x9e37_79b9).to_le_bytes());
    }
    columns.extend_from_slice(&parts.counts);
    for n in 0..layers {
        let holder = parts.holders.get(n).copied().unwrap_or(0);
        columns.extend_from_slice(&holder.to_le_bytes());
    }
    for n in 0..layers {
        columns.extend_from_slice(&parts.gaps.get(n).copied().unwrap_or(0).to_le_bytes());
    }
    let mut out = b"PGKEEPBM".to_vec();
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&parts.block_size.to_le_bytes());
    out.extend_from_slice(&3u16.to_le_bytes());
    for label in ["F", "E", "D"] {
        text(&mut out, label);
    }
    let blocks = parts.blocks.unwrap_or(parts.counts.len() as u32);
    out.extend_from_slice(&blocks.to_le_bytes());
    out.extend_from_slice(&parts.layers.unwrap_or(layers as u32).to_le_bytes());
    out.extend_from_slice(&zstd::bulk::compress(&columns, 3).unwrap());
    retrail(&[out, vec![0; 32]].concat())
}

/// A version 3 (sparse) map of set `I` on top of `base` (the map file of set `F`), from
/// `parts`: its layer counts serve as stored kinds, its gaps as stored block gaps.
fn build_v3(parts: &Parts, base: &[u8]) -> Vec<u8> {
    let stored = parts.counts.len();
    let mut columns = Vec::new();
    for n in 0..stored {
        columns.extend_from_slice(&parts.gaps.get(n).copied().unwrap_or(0).to_le_bytes());
    }
    columns.extend(parts.counts.iter().map(|c| c % 3));
    for n in 0..stored {
        columns.extend_from_slice(&(n as u128 * 0x9e37_79b9).to_le_bytes());
    }
    // A map's checksum is its trailer: the SHA-256 of what comes before it.
    let checksum: String = sha2::Sha256::digest(&base[..base.len() - 32])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut out = b"PGKEEPBM".to_vec();
    out.extend_from_slice(&3u16.to_le_bytes());
    out.extend_from_slice(&parts.block_size.to_le_bytes());
    for t in ["I", "F", checksum.as_str()] {
        text(&mut out, t);
    }
    out.push(1);
    out.extend_from_slice(&parts.blocks.unwrap_or(40).to_le_bytes());
    out.extend_from_slice(&parts.layers.unwrap_or(stored as u32).to_le_bytes());
    out.extend_from_slice(&zstd::bulk::compress(&columns, 3).unwrap());
    retrail(&[out, vec![0; 32]].concat())
}

// ---------------------------------------------------------------------------------------------
// pg_control.

/// pg_control with its CRC-32C recomputed for the layout of `major`, as an attacker would.
fn recrc(bytes: &mut [u8], major: u32) {
    let Some(layout) = ControlLayout::of(PgVersion::from_major(major)) else {
        return;
    };
    if bytes.len() >= layout.min_len() {
        let crc = crc32c::crc32c(&bytes[..layout.crc]);
        bytes[layout.crc..layout.crc + 4].copy_from_slice(&crc.to_le_bytes());
    }
}

// ---------------------------------------------------------------------------------------------
// The properties.

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_files_never_panic(
        edits in edits(),
        random in random_bytes(),
        pick in 0..3u8,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let bytes = match pick {
            0 => apply(CONFIG.as_bytes(), &edits),
            1 => random,
            // Valid text lines in a random order and number: grammar, not bytes.
            _ => {
                let lines: Vec<&str> = CONFIG.lines().collect();
                random
                    .iter()
                    .map(|b| lines[usize::from(*b) % lines.len()])
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into_bytes()
            }
        };
        parse_config(dir.path(), &bytes);
    }

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

    /// A manifest whose numbers are rewritten and whose checksum is recomputed: it loads, and
    /// what restore and verify do with its sizes and bundle ranges must stay bounded.
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

    /// archive.info and backup.info with any numbers and a recomputed checksum.
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

    /// Bundle ranges of any offset and length, over bundles of any length.
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

    #[test]
    fn block_maps_never_panic(
        edits in edits(),
        random in random_bytes(),
        pick in 0..4u8,
        reseal in any::<bool>(),
    ) {
        let maps = &*MAPS;
        let dir = tempfile::tempdir().unwrap();
        let repo = PosixStorage::new(dir.path().to_path_buf());
        let (label, seed) = match pick {
            0 => ("F", &maps.full),
            1 => ("I", &maps.sparse),
            2 => ("F", &maps.v1),
            _ => ("F", &random),
        };
        let mut bytes = if pick == 3 { random.clone() } else { apply(seed, &edits) };
        if reseal {
            bytes = retrail(&bytes);
        }
        repo.put(&map_path("F"), &maps.full, &unsynced()).unwrap();
        repo.put(&map_path(label), &bytes, &unsynced()).unwrap();
        load_map(&repo, label);
    }

    /// Maps whose columns decompress but whose counts, holders, positions and kinds are
    /// anything: what a writer of the repository can make with a valid trailer.
    #[test]
    fn built_block_maps_never_panic(parts in parts(), sparse in any::<bool>()) {
        let maps = &*MAPS;
        let dir = tempfile::tempdir().unwrap();
        let repo = PosixStorage::new(dir.path().to_path_buf());
        repo.put(&map_path("F"), &maps.full, &unsynced()).unwrap();
        if sparse {
            repo.put(&map_path("I"), &build_v3(&parts, &maps.full), &unsynced())
                .unwrap();
            load_map(&repo, "I");
        } else {
            repo.put(&map_path("F"), &build_v2(&parts), &unsynced()).unwrap();
            load_map(&repo, "F");
        }
    }

    /// The framed block stream a backup's block-incremental filter sends from the database
    /// host, as the repository side stores it.
    #[test]
    fn block_streams_never_panic(edits in edits(), random in random_bytes(), pick in 0..2u8) {
        let mut framed = Vec::new();
        for (number, len) in [(0u32, 8192u32), (3, 8192), (9, 100)] {
            framed.extend_from_slice(&number.to_le_bytes());
            framed.extend_from_slice(&len.to_le_bytes());
            framed.extend(std::iter::repeat_n(number as u8, len as usize));
        }
        let bytes = if pick == 0 { apply(&framed, &edits) } else { random };
        let mut chain = FilterChain::from_specs(&[FilterSpec::Size]).unwrap();
        let _ = bounded("block stream", || {
            write_blocks(&mut &bytes[..], None, &mut chain, &mut std::io::sink(), 64 * 1024)
        });
    }

    /// Compressed data of every type as stored in the repository, damaged: the decompressors
    /// of restore, verify and archive-get.
    #[test]
    fn compressed_data_never_panics(
        edits in edits(),
        random in random_bytes(),
        kind in prop_oneof![Just(CompressType::Gz), Just(CompressType::Lz4), Just(CompressType::Zst)],
        pick in 0..2u8,
    ) {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8 ^ (i / 4096) as u8).collect();
        let mut compressed = Vec::new();
        let mut compress = FilterChain::from_specs(&[FilterSpec::Compress { kind, level: 1 }]).unwrap();
        stream::copy_through(&mut &data[..], &mut compress, &mut compressed, 64 * 1024).unwrap();
        let bytes = if pick == 0 { apply(&compressed, &edits) } else { random };
        let mut chain = FilterChain::from_specs(&[
            FilterSpec::Decompress { kind },
            FilterSpec::Size,
            FilterSpec::Hash,
        ])
        .unwrap();
        let _ = bounded("decompress", || {
            stream::copy_through(&mut &bytes[..], &mut chain, &mut std::io::sink(), 64 * 1024)
        });
    }

    #[test]
    fn pg_control_of_every_version_never_panics(
        major in MAJORS,
        edits in edits(),
        random in random_bytes(),
        pick in 0..3u8,
    ) {
        let mut bytes = match pick {
            0 => apply(&fixture(major, "pg_control"), &edits),
            1 => {
                let mut b = apply(&fixture(major, "pg_control"), &edits);
                recrc(&mut b, major);
                b
            }
            _ => random,
        };
        if pick == 2 {
            recrc(&mut bytes, major);
        }
        let _ = bounded("pg_control", || ControlData::parse(&bytes));
    }

    #[test]
    fn wal_headers_and_names_never_panic(
        major in MAJORS,
        edits in edits(),
        random in random_bytes(),
        name in "[0-9A-Fa-f.a-z]{0,40}",
    ) {
        let page = apply(&fixture(major, "wal-first-page"), &edits);
        bounded("WAL header", || {
            let _ = WalHeader::parse(&page);
            let _ = WalHeader::parse(&random);
            for name in [name.as_str(), &String::from_utf8_lossy(&random)] {
                let _ = WalFileKind::of(name);
                let _ = WalSegment::of_file_name(name);
                let _ = WalSegment::history_timeline(name);
                if let Ok(segment) = WalSegment::parse(name) {
                    let _ = (segment.name(), segment.log_dir_name());
                }
            }
        });
    }

    #[test]
    fn history_files_never_panic(edits in edits(), random in random_bytes(), pick in 0..2u8) {
        let valid = "1\t0/3000000\tno recovery target specified\n\n# a comment\n\
                     2\t0/5000158\tat restore point \"before\"\n";
        let bytes = match pick {
            0 => apply(valid.as_bytes(), &edits),
            _ => random,
        };
        let text = String::from_utf8_lossy(&bytes);
        let _ = bounded("history", || history::parse(&text));
    }
}

/// The seeds are what the writers produce and the parsers accept: the mutations start from
/// real, valid input, not from something refused at its first byte.
#[test]
fn seeds_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgkeep.conf");
    std::fs::write(&file, CONFIG).unwrap();
    let args: Vec<String> = [
        format!("--config={}", file.display()),
        "--stanza=demo".to_string(),
        "backup".to_string(),
    ]
    .into();
    pgkeep::config::parse(&args, &[]).unwrap();
    let bytes = info_file::encode(&manifest()).unwrap();
    assert_eq!(info_file::decode::<Manifest>(&bytes).unwrap(), manifest());
    assert_eq!(
        info_file::decode::<Manifest>(&reseal(&serde_json::to_value(manifest()).unwrap())).unwrap(),
        manifest()
    );
    let maps = maps();
    let repo = PosixStorage::new(dir.path().to_path_buf());
    repo.put(&map_path("F"), &maps.full, &unsynced()).unwrap();
    repo.put(&map_path("I"), &maps.sparse, &unsynced()).unwrap();
    assert_eq!(
        BlockMap::load(&repo, "s", "I", "pg_data/f", None)
            .unwrap()
            .blocks
            .len(),
        40
    );
    repo.put(&map_path("F"), &maps.v1, &unsynced()).unwrap();
    assert_eq!(
        BlockMap::load(&repo, "s", "F", "pg_data/f", None)
            .unwrap()
            .blocks
            .len(),
        40
    );
    let valid = Parts {
        block_size: BS,
        counts: vec![1; 40],
        holders: vec![0; 40],
        gaps: vec![0; 40],
        blocks: None,
        layers: None,
    };
    repo.put(&map_path("F"), &build_v2(&valid), &unsynced())
        .unwrap();
    assert_eq!(
        BlockMap::load(&repo, "s", "F", "pg_data/f", None)
            .unwrap()
            .blocks
            .len(),
        40
    );
    let stored = Parts {
        counts: vec![3, 3],
        gaps: vec![3, 13],
        ..valid
    };
    repo.put(&map_path("F"), &maps.full, &unsynced()).unwrap();
    repo.put(&map_path("I"), &build_v3(&stored, &maps.full), &unsynced())
        .unwrap();
    assert_eq!(
        BlockMap::load(&repo, "s", "I", "pg_data/f", None)
            .unwrap()
            .blocks
            .len(),
        40
    );
    for major in MAJORS {
        ControlData::parse(&fixture(major, "pg_control")).unwrap();
        WalHeader::parse(&fixture(major, "wal-first-page")).unwrap();
    }
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
