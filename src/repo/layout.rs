//! Paths inside the repository, relative to its root (`repo1-path`).
//!
//! ```text
//! archive/<stanza>/archive.info[.copy]
//! archive/<stanza>/<archive id>/<timeline>.history
//! archive/<stanza>/<archive id>/<first 16 hex of segment>/<segment>-<sha256>[.<ext>]
//! backup/<stanza>/backup.info[.copy]
//! backup/<stanza>/<label>/backup.manifest[.copy]
//! backup/<stanza>/<label>/pg_data/<path in the data directory>[.<ext>]
//! backup/<stanza>/latest -> <label>
//! ```

/// The suffix of an info file's twin.
pub const COPY_EXT: &str = ".copy";

pub fn archive_dir(stanza: &str) -> String {
    format!("archive/{stanza}")
}

pub fn archive_info(stanza: &str) -> String {
    format!("archive/{stanza}/archive.info")
}

pub fn archive_id_dir(stanza: &str, archive_id: &str) -> String {
    format!("archive/{stanza}/{archive_id}")
}

/// The directory holding a WAL segment (or `.partial`/`.backup` file): the first 16 hex digits
/// (timeline and log id) of its name, as pgBackRest lays it out.
pub fn wal_dir(stanza: &str, archive_id: &str, wal_name: &str) -> String {
    let prefix = wal_name.get(..16).unwrap_or(wal_name);
    format!("archive/{stanza}/{archive_id}/{prefix}")
}

/// The stored name of a WAL file: its name, its checksum, its compression extension.
pub fn wal_file_name(wal_name: &str, checksum: &str, ext: &str) -> String {
    if ext.is_empty() {
        format!("{wal_name}-{checksum}")
    } else {
        format!("{wal_name}-{checksum}.{ext}")
    }
}

pub fn history_file(stanza: &str, archive_id: &str, name: &str) -> String {
    format!("archive/{stanza}/{archive_id}/{name}")
}

pub fn backup_dir(stanza: &str) -> String {
    format!("backup/{stanza}")
}

pub fn backup_info(stanza: &str) -> String {
    format!("backup/{stanza}/backup.info")
}

pub fn backup_set_dir(stanza: &str, label: &str) -> String {
    format!("backup/{stanza}/{label}")
}

pub fn manifest(stanza: &str, label: &str) -> String {
    format!("backup/{stanza}/{label}/backup.manifest")
}

pub fn latest_link(stanza: &str) -> String {
    format!("backup/{stanza}/latest")
}

/// A data file of a backup set: `name` is the manifest name (e.g. `pg_data/base/1/1259`).
pub fn backup_file(stanza: &str, label: &str, name: &str, ext: &str) -> String {
    if ext.is_empty() {
        format!("backup/{stanza}/{label}/{name}")
    } else {
        format!("backup/{stanza}/{label}/{name}.{ext}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_files_live_under_their_timeline_and_log_id() {
        assert_eq!(
            wal_dir("demo", "15-1", "000000010000000200000003"),
            "archive/demo/15-1/0000000100000002"
        );
        assert_eq!(
            wal_file_name("000000010000000200000003", "ab12", "zst"),
            "000000010000000200000003-ab12.zst"
        );
        assert_eq!(
            wal_file_name("000000010000000200000003", "ab12", ""),
            "000000010000000200000003-ab12"
        );
    }

    #[test]
    fn backup_files_carry_the_compression_extension() {
        assert_eq!(
            backup_file("demo", "20261124-212345F", "pg_data/base/1/1259", "lz4"),
            "backup/demo/20261124-212345F/pg_data/base/1/1259.lz4"
        );
        assert_eq!(manifest("demo", "L"), "backup/demo/L/backup.manifest");
    }
}
