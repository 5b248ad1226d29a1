//! The SQL pgkeep sends, with every version difference in one place.
//!
//! Function names that changed between versions come from `PgVersion` (`pg::version`); this
//! module assembles them into the queries `pg::session` runs. Every function is qualified with
//! `pg_catalog` so a user's objects on the search path cannot stand in for PostgreSQL's.
//! Results that are LSNs come back as text (`0/1A000028`) and are parsed by `Lsn`.

use crate::pg::version::PgVersion;

/// The server's version number, read once at connect.
pub const IDENTIFY: &str = "select pg_catalog.current_setting('server_version_num')::int4";

/// The data directory (superusers and pg_read_all_settings members only).
pub const DATA_DIRECTORY: &str = "select pg_catalog.current_setting('data_directory')";

/// Makes the session's search path PostgreSQL's catalog only.
pub const SESSION_SETUP: &str = "set search_path = 'pg_catalog'";

/// The system identifier (from pg_control, as the server sees it).
pub const SYSTEM_ID: &str = "select system_identifier from pg_catalog.pg_control_system()";

/// Whether the server is a standby (or still recovering).
pub const IN_RECOVERY: &str = "select pg_catalog.pg_is_in_recovery()";

/// A setting's value, NULL when no such setting exists. `$1`: the name.
pub const SETTING: &str = "select pg_catalog.current_setting($1, true)";

/// Databases: oid and name.
pub const DATABASES: &str = "select oid, datname from pg_catalog.pg_database order by oid";

/// Tablespaces other than the two built-in ones: oid, name and location.
pub const TABLESPACES: &str = "select oid, spcname, pg_catalog.pg_tablespace_location(oid) \
                               from pg_catalog.pg_tablespace \
                               where spcname not in ('pg_default', 'pg_global') order by oid";

/// Writes a named restore point into WAL. `$1`: the name. Returns its LSN.
pub const CREATE_RESTORE_POINT: &str = "select pg_catalog.pg_create_restore_point($1)::text";

/// Forces a checkpoint.
pub const CHECKPOINT: &str = "checkpoint";

/// Starts a non-exclusive backup. `$1`: label, `$2`: fast (immediate) checkpoint. Returns the
/// start LSN, the name of its WAL segment and the server's clock in Unix seconds.
pub fn backup_start(version: PgVersion) -> String {
    // Before 15 the function also took `exclusive`; non-exclusive mode is the only one that
    // survives a crash cleanly and the only one 15 kept.
    let call = if version.major() >= 15 {
        format!("pg_catalog.{}($1, $2)", version.fn_backup_start())
    } else {
        format!("pg_catalog.{}($1, $2, false)", version.fn_backup_start())
    };
    format!(
        "select lsn::text, pg_catalog.{}(lsn)::text, \
         pg_catalog.floor(extract(epoch from pg_catalog.clock_timestamp()))::int8 \
         from {call} as lsn",
        version.fn_walfile_name()
    )
}

/// Stops the backup started in this session without waiting for WAL archiving (pgkeep
/// checks the archive itself). Returns the stop LSN, its WAL segment, the backup_label
/// content and the tablespace_map content.
pub fn backup_stop(version: PgVersion) -> String {
    let call = if version.major() >= 15 {
        format!("pg_catalog.{}(false)", version.fn_backup_stop())
    } else {
        // (exclusive, wait_for_archive)
        format!("pg_catalog.{}(false, false)", version.fn_backup_stop())
    };
    format!(
        "select lsn::text, pg_catalog.{}(lsn)::text, labelfile, spcmapfile from {call}",
        version.fn_walfile_name()
    )
}

/// Switches to a new WAL segment; returns the end of the switch record.
pub fn switch_wal(version: PgVersion) -> String {
    format!("select pg_catalog.{}()::text", version.fn_switch_wal())
}

/// The name of the segment WAL is being inserted into now.
pub fn current_wal_segment(version: PgVersion) -> String {
    format!(
        "select pg_catalog.{}(pg_catalog.{}())::text",
        version.fn_walfile_name(),
        version.fn_current_wal_insert_lsn()
    )
}

/// The name of the segment holding the byte before an LSN, on the current timeline.
/// `$1`: the LSN as text.
pub fn walfile_name(version: PgVersion) -> String {
    format!(
        "select pg_catalog.{}($1::text::pg_catalog.pg_lsn)::text",
        version.fn_walfile_name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_functions_follow_the_version() {
        let v14 = PgVersion::from_major(14);
        let v15 = PgVersion::from_major(15);
        assert!(backup_start(v14).contains("pg_catalog.pg_start_backup($1, $2, false) as lsn"));
        assert!(backup_start(v15).contains("pg_catalog.pg_backup_start($1, $2) as lsn"));
        assert!(backup_stop(v14).ends_with("from pg_catalog.pg_stop_backup(false, false)"));
        assert!(backup_stop(v15).ends_with("from pg_catalog.pg_backup_stop(false)"));
        assert_eq!(switch_wal(v15), "select pg_catalog.pg_switch_wal()::text");
        assert!(
            current_wal_segment(v15)
                .contains("pg_walfile_name(pg_catalog.pg_current_wal_insert_lsn())")
        );
        let v96 = PgVersion::parse("9.6").unwrap();
        assert!(backup_start(v96).contains("pg_xlogfile_name(lsn)"));
        assert!(current_wal_segment(v96).contains("pg_current_xlog_insert_location"));
    }
}
