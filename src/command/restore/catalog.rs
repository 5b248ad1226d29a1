//! Tablespace names, read from the `pg_tablespace` catalog inside the backup set.
//!
//! The manifest knows tablespaces by oid (their `pg_tblspc/<oid>` links), but DBAs know them by
//! name: `tablespace-map=ts1=/srv/ts1`, and `tablespace-map-all` restores each under its name.
//! The names are in the shared catalog `pg_tablespace`, whose file is found through
//! `global/pg_filenode.map` (it is a mapped catalog: VACUUM FULL gives it a new file number).
//! The heap pages are read the way PostgreSQL lays them out: line pointers after the 24-byte
//! page header, tuples with their header and `t_hoff`, then the columns `oid` (a system column
//! in the header before 12) and `spcname` (64 bytes). A tuple whose deletion is not known to
//! have failed (xmax set without `HEAP_XMAX_INVALID`) is an older version (a rename, a drop);
//! the live version wins. This belongs with the other PostgreSQL facts in `pg` and sits here
//! only because restore is its one user so far. Names are a convenience: when they cannot be
//! read, the caller falls back to oids.

use std::collections::BTreeMap;

/// `pg_tablespace`'s relation oid, the key of its entry in `pg_filenode.map`.
const PG_TABLESPACE_OID: u32 = 1213;
/// `RELMAPPER_FILEMAGIC`.
const RELMAP_MAGIC: u32 = 0x0059_2717;
const PAGE_HEADER: usize = 24;
const NAME_LEN: usize = 64;
/// t_infomask bits.
const HEAP_HASOID_OLD: u16 = 0x0008;
const HEAP_XMAX_LOCK_ONLY: u16 = 0x0080;
const HEAP_XMIN_INVALID: u16 = 0x0200;
const HEAP_XMAX_INVALID: u16 = 0x0800;

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The file number of `pg_tablespace` from `global/pg_filenode.map`.
pub fn tablespace_filenode(map: &[u8]) -> Option<u32> {
    if u32_at(map, 0)? != RELMAP_MAGIC {
        return None;
    }
    let count = usize::try_from(u32_at(map, 4)?).ok()?.min(256);
    (0..count)
        .map(|i| 8 + i * 8)
        .find(|at| u32_at(map, *at) == Some(PG_TABLESPACE_OID))
        .and_then(|at| u32_at(map, at + 4))
}

/// Tablespace oid → name from the heap file of `pg_tablespace`.
pub fn tablespace_names(heap: &[u8]) -> BTreeMap<u32, String> {
    let mut live = BTreeMap::new();
    let mut old = BTreeMap::new();
    // pd_pagesize_version: the page size in the high byte's bits, the layout version below.
    let page_size = match u16_at(heap, 18).map(|v| usize::from(v & 0xFF00)) {
        Some(size) if size >= 1024 => size,
        _ => 8192,
    };
    for page in heap.chunks(page_size) {
        for (oid, name, is_live) in page_tuples(page) {
            if is_live {
                live.insert(oid, name);
            } else {
                old.insert(oid, name);
            }
        }
    }
    for (oid, name) in old {
        live.entry(oid).or_insert(name);
    }
    live
}

/// (oid, name, live) of every normal tuple on a page; damaged entries are skipped.
fn page_tuples(page: &[u8]) -> Vec<(u32, String, bool)> {
    let mut out = Vec::new();
    let Some(lower) = u16_at(page, 12).map(usize::from) else {
        return out;
    };
    if lower < PAGE_HEADER || lower > page.len() {
        return out;
    }
    for slot in (PAGE_HEADER..lower).step_by(4) {
        let Some(item) = u32_at(page, slot) else {
            continue;
        };
        let (offset, flags, len) = (
            (item & 0x7FFF) as usize,
            (item >> 15) & 0x3,
            (item >> 17) as usize,
        );
        // LP_NORMAL only: unused, redirect and dead pointers hold no tuple.
        if flags != 1 {
            continue;
        }
        if let Some(tuple) = page.get(offset..offset + len)
            && let Some(found) = tuple_name(tuple)
        {
            out.push(found);
        }
    }
    out
}

fn tuple_name(tuple: &[u8]) -> Option<(u32, String, bool)> {
    let xmax = u32_at(tuple, 4)?;
    let infomask = u16_at(tuple, 20)?;
    let hoff = usize::from(*tuple.get(22)?);
    if infomask & HEAP_XMIN_INVALID != 0 {
        return None;
    }
    let (oid, name_at) = if infomask & HEAP_HASOID_OLD != 0 {
        (u32_at(tuple, hoff.checked_sub(4)?)?, hoff)
    } else {
        (u32_at(tuple, hoff)?, hoff + 4)
    };
    let raw = tuple.get(name_at..name_at + NAME_LEN)?;
    let end = raw.iter().position(|b| *b == 0).unwrap_or(NAME_LEN);
    let name = std::str::from_utf8(&raw[..end]).ok()?.to_string();
    let live = xmax == 0 || infomask & (HEAP_XMAX_INVALID | HEAP_XMAX_LOCK_ONLY) != 0;
    Some((oid, name, live))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page with the given tuples: (oid, name, xmax, infomask, oid in header).
    fn page(tuples: &[(u32, &str, u32, u16, bool)]) -> Vec<u8> {
        let mut page = vec![0u8; 8192];
        page[18..20].copy_from_slice(&(0x2000u16 | 4).to_le_bytes());
        let mut upper = 8192;
        for (i, (oid, name, xmax, infomask, old_oid)) in tuples.iter().enumerate() {
            let hoff = if *old_oid { 32 } else { 24 };
            let mut tuple = vec![0u8; hoff + 4 + NAME_LEN + 12];
            tuple[0..4].copy_from_slice(&700u32.to_le_bytes());
            tuple[4..8].copy_from_slice(&xmax.to_le_bytes());
            tuple[20..22].copy_from_slice(&infomask.to_le_bytes());
            tuple[22] = hoff as u8;
            let name_at = if *old_oid {
                tuple[hoff - 4..hoff].copy_from_slice(&oid.to_le_bytes());
                hoff
            } else {
                tuple[hoff..hoff + 4].copy_from_slice(&oid.to_le_bytes());
                hoff + 4
            };
            tuple[name_at..name_at + name.len()].copy_from_slice(name.as_bytes());
            upper -= tuple.len();
            page[upper..upper + tuple.len()].copy_from_slice(&tuple);
            let item = (upper as u32) | (1 << 15) | ((tuple.len() as u32) << 17);
            page[24 + i * 4..28 + i * 4].copy_from_slice(&item.to_le_bytes());
        }
        let lower = (24 + tuples.len() * 4) as u16;
        page[12..14].copy_from_slice(&lower.to_le_bytes());
        page[14..16].copy_from_slice(&(upper as u16).to_le_bytes());
        page
    }

    #[test]
    fn names_come_from_live_tuples() {
        let heap = page(&[
            (1663, "pg_default", 0, 0, false),
            (1664, "pg_global", 0, 0, false),
            // Renamed: the old version carries the renaming transaction as xmax.
            (16400, "old_name", 750, 0, false),
            (16400, "ts1", 0, HEAP_XMAX_INVALID, false),
            // Dropped: only a deleted version remains; its name still helps a restore from
            // before the drop.
            (16500, "gone", 760, 0, false),
        ]);
        let names = tablespace_names(&heap);
        assert_eq!(names.get(&16400).map(String::as_str), Some("ts1"));
        assert_eq!(names.get(&1663).map(String::as_str), Some("pg_default"));
        assert_eq!(names.get(&16500).map(String::as_str), Some("gone"));
    }

    #[test]
    fn before_12_the_oid_is_in_the_tuple_header() {
        let heap = page(&[(16400, "ts_old", 0, HEAP_HASOID_OLD, true)]);
        assert_eq!(
            tablespace_names(&heap).get(&16400).map(String::as_str),
            Some("ts_old")
        );
    }

    #[test]
    fn the_filenode_map_gives_pg_tablespace_its_file() {
        let mut map = vec![0u8; 512];
        map[0..4].copy_from_slice(&RELMAP_MAGIC.to_le_bytes());
        map[4..8].copy_from_slice(&2u32.to_le_bytes());
        map[8..12].copy_from_slice(&1262u32.to_le_bytes());
        map[12..16].copy_from_slice(&1262u32.to_le_bytes());
        map[16..20].copy_from_slice(&1213u32.to_le_bytes());
        map[20..24].copy_from_slice(&16999u32.to_le_bytes());
        assert_eq!(tablespace_filenode(&map), Some(16999));
        map[0] = 0;
        assert_eq!(tablespace_filenode(&map), None);
        assert!(tablespace_names(&[0u8; 100]).is_empty());
    }
}
