//! Which data-directory files hold checksummed pages, and the block number each starts at.
//!
//! Only relation files carry page checksums: `<relfilenode>[_fsm|_vm|_init][.<segment>]` in a
//! database directory (`base/<dboid>/`, `pg_tblspc/<oid>/<version dir>/<dboid>/`) or in
//! `global/`. PostgreSQL's base backup checks every file in those directories except a short
//! list (pg_control, pg_filenode.map, pg_internal.init, PG_VERSION); pgkeep checks only names
//! that are relation files, so nothing else there (temp relations `t<backend>_<relfilenode>`,
//! pgsql_tmp, files left by extensions) can raise a false checksum error. Skipping a file only
//! loses a check; checking a file that is not a relation would report corruption that is not.

use super::RELSEG_SIZE;

/// The forks besides the main one, as file name suffixes.
const FORK_SUFFIXES: [&str; 3] = ["_fsm", "_vm", "_init"];

/// The first block number of `rel_path` (relative to the data directory, `/`-separated) when
/// it is a relation file whose pages carry checksums: `N * RELSEG_SIZE` for segment `.N`, 0
/// for the first segment. `None` for every other file.
pub fn checked_file(rel_path: &str) -> Option<u32> {
    let parts: Vec<&str> = rel_path.split('/').collect();
    let name = match parts.as_slice() {
        ["global", name] => name,
        ["base", db, name] if is_oid(db) => name,
        ["pg_tblspc", tablespace, version, db, name]
            if is_oid(tablespace) && version.starts_with("PG_") && is_oid(db) =>
        {
            name
        }
        _ => return None,
    };
    first_block(name)
}

/// The first block of a relation file named `name`, or `None` when it is not one.
fn first_block(name: &str) -> Option<u32> {
    let (stem, segment) = match name.split_once('.') {
        Some((stem, segment)) => (stem, Some(segment)),
        None => (name, None),
    };
    let relfilenode = FORK_SUFFIXES
        .iter()
        .find_map(|suffix| stem.strip_suffix(suffix))
        .unwrap_or(stem);
    if !is_oid(relfilenode) {
        return None;
    }
    match segment {
        None => Some(0),
        // Segment 0 has no suffix: `.0` is not a name PostgreSQL makes.
        Some(segment) => match number(segment)? {
            0 => None,
            segment => segment.checked_mul(RELSEG_SIZE),
        },
    }
}

/// A non-zero object id written as PostgreSQL writes it.
fn is_oid(text: &str) -> bool {
    number(text).is_some_and(|oid| oid != 0)
}

/// A decimal `u32` without sign or leading zeros, the only form PostgreSQL writes in names.
fn number(text: &str) -> Option<u32> {
    let canonical = !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relation_files_and_their_forks_are_checked() {
        for path in [
            "base/5/16384",
            "base/5/16384_fsm",
            "base/5/16384_vm",
            "base/5/16384_init",
            "global/1262",
            "global/1213_vm",
            "pg_tblspc/16400/PG_15_202209061/16401/16402",
            "pg_tblspc/16400/PG_15_202209061/16401/16402_fsm",
        ] {
            assert_eq!(checked_file(path), Some(0), "{path}");
        }
    }

    #[test]
    fn segments_start_at_their_absolute_block() {
        assert_eq!(checked_file("base/5/16384.1"), Some(131_072));
        assert_eq!(checked_file("base/5/16384_vm.2"), Some(262_144));
        assert_eq!(
            checked_file("pg_tblspc/16400/PG_15_202209061/16401/16402.7"),
            Some(7 * 131_072)
        );
        // The last segment a 32 TiB relation can have, and one past it.
        assert_eq!(checked_file("base/5/16384.32767"), Some(32_767 * 131_072));
        assert_eq!(checked_file("base/5/16384.32768"), None);
    }

    #[test]
    fn other_files_are_not_checked() {
        for path in [
            "global/pg_control",
            "global/pg_filenode.map",
            "global/pg_internal.init",
            "base/5/pg_filenode.map",
            "base/5/pg_internal.init",
            "base/5/PG_VERSION",
            "base/5/t3_16384",
            "base/5/t3_16384.1",
            "base/5/pgsql_tmp/pgsql_tmp123.0",
            "base/5/16384.0",
            "base/5/16384.",
            "base/5/16384_main",
            "base/5/16384_fsm_vm",
            "base/5/016384",
            "base/5/16384.01",
            "base/5/99999999999",
            "base/5/0",
            "base/pgsql_tmp/16384",
            "base/x/16384",
            "base/0/16384",
            "base/5/sub/16384",
            "16384",
            "pg_wal/000000010000000000000001",
            "pg_xact/0000",
            "pg_multixact/offsets/0000",
            "pg_tblspc/16400/PG_15_202209061/16401/pg_filenode.map",
            "pg_tblspc/16400/other/16401/16402",
            "pg_tblspc/16400/PG_15_202209061/16402",
            "global/1262/x",
            "",
        ] {
            assert_eq!(checked_file(path), None, "{path}");
        }
    }
}
