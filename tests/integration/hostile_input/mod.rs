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
//! One module per kind of input; the allocator, the mutations and their strategies are here.

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

/// Files of a test repository: written atomically but not synced, so thousands of cases do
/// not wait for the disk.
fn unsynced() -> WriteOptions {
    WriteOptions {
        sync_file: false,
        sync_path: false,
        ..WriteOptions::default()
    }
}

const MAJORS: std::ops::RangeInclusive<u32> = 10..=18;

mod block_maps;
mod config_files;
mod info;
mod pg;
