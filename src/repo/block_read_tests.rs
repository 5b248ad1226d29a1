//! Tests of block-incremental reassembly: chains of raw and delta layers, damage, old maps.

use super::*;
use crate::io::stream::from_io_error;
use crate::io::{FilterChain, FilterResult, FilterSpec, sha256_hex, stream};
use crate::repo::block_map::MAX_MAP_DEPTH;
use crate::repo::block_write::{record_deltas, write_blocks};
use crate::repo::manifest::BlockRef;
use crate::storage::{PosixStorage, WriteOptions};

const BS: usize = 8192;
const NAME: &str = "pg_data/base/1/16384";

/// Stores `data` as backup `label` would, comparing with `prior` (map, entry and set label);
/// returns the entry and the (complete) map.
fn store(
    repo: &PosixStorage,
    label: &str,
    data: &[u8],
    prior: Option<(&BlockMap, &FileEntry, &str)>,
) -> (FileEntry, BlockMap) {
    let mut chain = FilterChain::from_specs(&[FilterSpec::BlockIncr {
        prior: prior.map(|p| p.0.hashes()),
        block_size: BS as u32,
        framed: true,
    }])
    .unwrap();
    let mut framed = Vec::new();
    let results = stream::copy_through(&mut &data[..], &mut chain, &mut framed, 4096).unwrap();
    let [FilterResult::BlockIncr(result)] = results.as_slice() else {
        panic!("{results:?}")
    };
    let mut result = result.clone();
    let mut base = prior.map(|(map, entry, _)| {
        Reassembler::with_map(repo, "s", NAME, CompressType::Zst, map.clone(), entry.size)
    });
    let mut compress = FilterChain::from_specs(&[FilterSpec::Compress {
        kind: CompressType::Zst,
        level: 1,
    }])
    .unwrap();
    let mut object = Vec::new();
    let (deltas, _) = write_blocks(
        &mut &framed[..],
        base.as_mut(),
        &mut compress,
        &mut object,
        4096,
    )
    .unwrap();
    record_deltas(&mut result, deltas).unwrap();
    let result = &result;
    let options = WriteOptions {
        create_path: true,
        ..WriteOptions::default()
    };
    repo.put(
        &layout::backup_file("s", label, NAME, "zst"),
        &object,
        &options,
    )
    .unwrap();
    let map = BlockMap::next(prior.map(|p| p.0), label, result, BS as u32).unwrap();
    let path = layout::backup_file("s", label, NAME, MAP_EXT);
    let sparse_on = prior.map(|(map, entry, set)| {
        let checksum = entry.block.as_ref().unwrap().map_checksum.as_str();
        (map, set, checksum)
    });
    let (map_size, map_checksum) = map
        .save_next(repo, &path, sparse_on, label, result)
        .unwrap();
    let map = BlockMap::load(repo, "s", label, NAME, Some(&map_checksum)).unwrap();
    let entry = FileEntry {
        name: NAME.into(),
        size: data.len() as u64,
        mtime: 0,
        mode: 0o600,
        user: None,
        group: None,
        checksum: sha256_hex(data),
        repo_size: object.len() as u64 + map_size,
        reference: None,
        page_errors: None,
        block: Some(BlockRef {
            map_size,
            map_checksum,
            holders: map.needed(),
            stored_size: 0,
        }),
        bundle_id: None,
        bundle_offset: None,
    };
    (entry, map)
}

fn read_all(repo: &PosixStorage, label: &str, entry: &FileEntry) -> Result<Vec<u8>> {
    let blocks = Reassembler::open(repo, "s", label, CompressType::Zst, entry)?;
    let mut out = Vec::new();
    ReassembledRead::new(blocks)
        .read_to_end(&mut out)
        .map_err(|e| from_io_error(e, ErrorKind::FileRead, "read"))?;
    Ok(out)
}

fn content(blocks: usize, seed: u8) -> Vec<u8> {
    (0..blocks * BS)
        .map(|i| (i / 13) as u8 ^ seed ^ (i / BS) as u8)
        .collect()
}

#[test]
fn a_chain_reassembles_to_each_backups_content() {
    let dir = tempfile::tempdir().unwrap();
    let repo = PosixStorage::new(dir.path().to_path_buf());
    let v1 = content(40, 1);
    let (full, map1) = store(&repo, "F", &v1, None);
    let mut v2 = v1.clone();
    v2[5 * BS + 3] ^= 1;
    v2[30 * BS] ^= 1;
    v2.extend_from_slice(&[7; 3000]);
    let (incr1, map2) = store(&repo, "I1", &v2, Some((&map1, &full, "F")));
    let mut v3 = v2.clone();
    v3.truncate(35 * BS);
    v3[6 * BS] ^= 1;
    let (incr2, map3) = store(&repo, "I2", &v3, Some((&map2, &incr1, "I1")));
    assert_eq!(read_all(&repo, "F", &full).unwrap(), v1);
    assert_eq!(read_all(&repo, "I1", &incr1).unwrap(), v2);
    assert_eq!(read_all(&repo, "I2", &incr2).unwrap(), v3);

    // Changed blocks are deltas on their prior version: block 6 is F's XOR I2's layer.
    assert_eq!(map3.layers(6).len(), 2);
    assert_eq!(map3.layers(30).len(), 2);
    assert_eq!(map3.layers(34).len(), 1);
    let i2_object = dir.path().join("backup/s/I2/pg_data/base/1/16384.zst");
    assert!(std::fs::metadata(&i2_object).unwrap().len() < 200);

    // Only wanted blocks are read; a holder never asked for is never opened.
    std::fs::remove_file(dir.path().join("backup/s/I1/pg_data/base/1/16384.zst")).unwrap();
    let mut blocks = Reassembler::open(&repo, "s", "I2", CompressType::Zst, &incr2).unwrap();
    assert_eq!(blocks.read(6).unwrap(), &v3[6 * BS..7 * BS]);
    let err = blocks.read(30).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileMissing);
    assert!(
        err.message().contains("16384.zst' is missing"),
        "{}",
        err.message()
    );
}

#[test]
fn a_damaged_middle_layer_fails_the_sets_built_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let repo = PosixStorage::new(dir.path().to_path_buf());
    let mut versions = vec![content(10, 3)];
    let (full, mut map) = store(&repo, "F", &versions[0], None);
    let mut entries = vec![full];
    for (i, label) in ["I1", "I2", "I3"].iter().enumerate() {
        let mut next = versions[i].clone();
        next[4 * BS + 100 + i] ^= 0x55;
        let (entry, next_map) = store(
            &repo,
            label,
            &next,
            Some((&map, &entries[i], ["F", "I1", "I2"][i])),
        );
        versions.push(next);
        entries.push(entry);
        map = next_map;
    }
    assert_eq!(map.layers(4).len(), 4);
    for (i, label) in ["F", "I1", "I2", "I3"].iter().enumerate() {
        assert_eq!(read_all(&repo, label, &entries[i]).unwrap(), versions[i]);
    }
    // Damage I2's one delta: F and I1 still read, I2 and I3 (built on it) do not.
    let object = dir.path().join("backup/s/I2/pg_data/base/1/16384.zst");
    let mut delta = zstd::decode_all(&std::fs::read(&object).unwrap()[..]).unwrap();
    delta[7] ^= 1;
    std::fs::write(&object, zstd::encode_all(&delta[..], 1).unwrap()).unwrap();
    assert_eq!(read_all(&repo, "F", &entries[0]).unwrap(), versions[0]);
    assert_eq!(read_all(&repo, "I1", &entries[1]).unwrap(), versions[1]);
    for (i, label) in [(2, "I2"), (3, "I3")] {
        let err = read_all(&repo, label, &entries[i]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Checksum);
        assert!(
            err.message()
                .contains("rebuilt from backup sets 'F', 'I1', 'I2'"),
            "{}",
            err.message()
        );
    }
}

#[test]
fn a_version_1_map_still_restores() {
    let dir = tempfile::tempdir().unwrap();
    let repo = PosixStorage::new(dir.path().to_path_buf());
    let data = content(6, 4);
    let (mut entry, map) = store(&repo, "F", &data, None);
    let bytes = map.encode_v1();
    let path = layout::backup_file("s", "F", NAME, MAP_EXT);
    std::fs::write(dir.path().join(&path), &bytes).unwrap();
    let block = entry.block.as_mut().unwrap();
    block.map_checksum = crate::io::hash::to_hex(&bytes[bytes.len() - 32..]);
    assert_eq!(read_all(&repo, "F", &entry).unwrap(), data);
}

#[test]
fn a_damaged_block_or_map_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let repo = PosixStorage::new(dir.path().to_path_buf());
    let (full, _) = store(&repo, "F", &content(8, 2), None);
    let mut other = full.clone();
    other.block.as_mut().unwrap().map_checksum = "0".repeat(64);
    let err = read_all(&repo, "F", &other).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Format);
    let object = dir.path().join("backup/s/F/pg_data/base/1/16384.zst");
    let uncompressed = zstd::decode_all(&std::fs::read(&object).unwrap()[..]).unwrap();
    let mut damaged = uncompressed.clone();
    damaged[3 * BS + 17] ^= 1;
    std::fs::write(&object, zstd::encode_all(&damaged[..], 1).unwrap()).unwrap();
    let err = read_all(&repo, "F", &full).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Checksum);
    assert!(
        err.message().starts_with("block 3 in backup file"),
        "{}",
        err.message()
    );
}

#[test]
fn an_unreadable_prior_version_stores_the_blocks_whole() {
    let dir = tempfile::tempdir().unwrap();
    let repo = PosixStorage::new(dir.path().to_path_buf());
    let v1 = content(8, 5);
    let (full, map1) = store(&repo, "F", &v1, None);
    std::fs::remove_file(dir.path().join("backup/s/F/pg_data/base/1/16384.zst")).unwrap();
    let mut v2 = v1.clone();
    v2[2 * BS] ^= 1;
    v2[5 * BS] ^= 1;
    let (_, map2) = store(&repo, "I1", &v2, Some((&map1, &full, "F")));
    assert_eq!(map2.layers(2).len(), 1);
    assert_eq!(map2.layers(5).len(), 1);
    assert_eq!(map2.holder(&map2.layers(5)[0]), "I1");
}

#[test]
fn sparse_maps_chain_back_to_a_complete_one() {
    let dir = tempfile::tempdir().unwrap();
    let repo = PosixStorage::new(dir.path().to_path_buf());
    let mut data = content(64, 6);
    let (mut entry, mut map) = store(&repo, "S0", &data, None);
    let full_map_size = entry.block.as_ref().unwrap().map_size;
    let mut kept = vec![(entry.clone(), data.clone())];
    for i in 1..=10 {
        let label = format!("S{i}");
        let prior_label = format!("S{}", i - 1);
        data[(i * 5) * BS + 9] ^= 0x11;
        let (next, next_map) = store(&repo, &label, &data, Some((&map, &entry, &prior_label)));
        // Sparse up to the depth limit, then complete again.
        let depth = if i <= usize::from(MAX_MAP_DEPTH) {
            i
        } else {
            i - 9
        };
        assert_eq!(next_map.depth as usize, depth, "{label}");
        if depth > 0 {
            assert!(next.block.as_ref().unwrap().map_size * 4 < full_map_size);
            assert!(next.block.as_ref().unwrap().holders.contains(&prior_label));
        }
        (entry, map) = (next, next_map);
        kept.push((entry.clone(), data.clone()));
    }
    for (i, (entry, data)) in kept.iter().enumerate() {
        assert_eq!(&read_all(&repo, &format!("S{i}"), entry).unwrap(), data);
    }
    // A damaged map early in the chain fails the maps built on it, not the complete one after.
    let path = dir
        .path()
        .join(layout::backup_file("s", "S2", NAME, MAP_EXT));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let err = read_all(&repo, "S5", &kept[5].0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Format);
    assert!(err.message().contains("S2/pg_data"), "{}", err.message());
    assert!(read_all(&repo, "S1", &kept[1].0).is_ok());
    assert!(read_all(&repo, "S9", &kept[9].0).is_ok());
    assert!(read_all(&repo, "S10", &kept[10].0).is_ok());
}
