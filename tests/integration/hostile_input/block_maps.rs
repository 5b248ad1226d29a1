//! Block maps of every version, the framed block stream a block-incremental backup receives,
//! and compressed data as stored in the repository.

use super::*;

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

proptest! {
    #![proptest_config(config())]

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
}

/// The seed maps, and maps built from valid parts, load: the mutations start from valid input.
#[test]
fn the_seed_maps_are_valid() {
    let dir = tempfile::tempdir().unwrap();
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
}
