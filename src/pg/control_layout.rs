//! The byte layout of `global/pg_control` for each supported major version.
//!
//! PostgreSQL writes its `ControlFileData` C struct to disk as it sits in memory, so a field's
//! offset follows from the fields before it and the C alignment rules of x86-64 and the other
//! 64-bit platforms PostgreSQL supports (bool and char 1, int32 4, int64 and double 8; a struct
//! aligns to its widest member and pads its size to that). Rather than a table of magic offsets
//! per version, this module lists the struct's fields as PostgreSQL declares them, with the
//! version that added or removed each one, and computes the offsets. The tests pin the results
//! to the offsets observed in pg_control files made by a real `initdb` of each version (the CRC
//! sits exactly at the computed `crc` offset only when every field before it is right).
//! Parsing the values is `pg::control`'s job.

use crate::pg::version::PgVersion;

/// A C type as laid out in the struct.
#[derive(Debug, Clone, Copy)]
enum CType {
    Bool,
    /// uint32, int32, Oid, TransactionId, TimeLineID, enums, pg_crc32c.
    Int32,
    /// uint64, XLogRecPtr, FullTransactionId, pg_time_t, double.
    Int64,
    /// A char array.
    Bytes(usize),
    /// The embedded `CheckPoint` struct: 8-byte aligned, of the given size.
    CheckPoint(usize),
}

impl CType {
    fn size(self) -> usize {
        match self {
            CType::Bool => 1,
            CType::Int32 => 4,
            CType::Int64 => 8,
            CType::Bytes(n) | CType::CheckPoint(n) => n,
        }
    }

    fn align(self) -> usize {
        match self {
            CType::Bool | CType::Bytes(_) => 1,
            CType::Int32 => 4,
            CType::Int64 | CType::CheckPoint(_) => 8,
        }
    }
}

/// The offsets pgkeep reads, in bytes from the start of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlLayout {
    pub system_identifier: usize,
    pub pg_control_version: usize,
    pub catalog_version_no: usize,
    pub state: usize,
    pub check_point: usize,
    /// `checkPointCopy.ThisTimeLineID`: the timeline of the last checkpoint.
    pub this_timeline_id: usize,
    pub blcksz: usize,
    pub xlog_seg_size: usize,
    pub data_checksum_version: usize,
    /// The CRC-32C of every byte before it.
    pub crc: usize,
}

/// Lays out fields in order; returns each field's offset and the padded struct size.
fn lay_out(fields: &[(&'static str, CType)]) -> (Vec<(&'static str, usize)>, usize) {
    let mut offsets = Vec::with_capacity(fields.len());
    let mut offset: usize = 0;
    let mut max_align = 1;
    for (name, ty) in fields {
        offset = offset.next_multiple_of(ty.align());
        offsets.push((*name, offset));
        offset += ty.size();
        max_align = max_align.max(ty.align());
    }
    (offsets, offset.next_multiple_of(max_align))
}

/// `CheckPoint` (the body of a checkpoint WAL record, copied into pg_control).
fn check_point_fields(version: PgVersion) -> Vec<(&'static str, CType)> {
    let major = version.major();
    let mut fields = vec![
        ("redo", CType::Int64),
        ("ThisTimeLineID", CType::Int32),
        ("PrevTimeLineID", CType::Int32),
        ("fullPageWrites", CType::Bool),
    ];
    // 17 records wal_level for the WAL summarizer; it fills padding before nextXid.
    if major >= 17 {
        fields.push(("wal_level", CType::Int32));
    }
    // 12 merged the epoch and the xid into one 64-bit FullTransactionId.
    if major >= 12 {
        fields.push(("nextXid", CType::Int64));
    } else {
        fields.push(("nextXidEpoch", CType::Int32));
        fields.push(("nextXid", CType::Int32));
    }
    fields.extend([
        ("nextOid", CType::Int32),
        ("nextMulti", CType::Int32),
        ("nextMultiOffset", CType::Int32),
        ("oldestXid", CType::Int32),
        ("oldestXidDB", CType::Int32),
        ("oldestMulti", CType::Int32),
        ("oldestMultiDB", CType::Int32),
        ("time", CType::Int64),
        ("oldestCommitTsXid", CType::Int32),
        ("newestCommitTsXid", CType::Int32),
        ("oldestActiveXid", CType::Int32),
    ]);
    fields
}

/// `ControlFileData` up to and including `crc`.
fn control_fields(version: PgVersion) -> Vec<(&'static str, CType)> {
    let major = version.major();
    let (_, check_point_size) = lay_out(&check_point_fields(version));
    let mut fields = vec![
        ("system_identifier", CType::Int64),
        ("pg_control_version", CType::Int32),
        ("catalog_version_no", CType::Int32),
        ("state", CType::Int32),
        ("time", CType::Int64),
        ("checkPoint", CType::Int64),
    ];
    // 11 stopped keeping the checkpoint before last.
    if major < 11 {
        fields.push(("prevCheckPoint", CType::Int64));
    }
    fields.extend([
        ("checkPointCopy", CType::CheckPoint(check_point_size)),
        ("unloggedLSN", CType::Int64),
        ("minRecoveryPoint", CType::Int64),
        ("minRecoveryPointTLI", CType::Int32),
        ("backupStartPoint", CType::Int64),
        ("backupEndPoint", CType::Int64),
        ("backupEndRequired", CType::Bool),
        ("wal_level", CType::Int32),
        ("wal_log_hints", CType::Bool),
        ("MaxConnections", CType::Int32),
        ("max_worker_processes", CType::Int32),
    ]);
    // 12 added max_wal_senders to the settings a standby must match.
    if major >= 12 {
        fields.push(("max_wal_senders", CType::Int32));
    }
    fields.extend([
        ("max_prepared_xacts", CType::Int32),
        ("max_locks_per_xact", CType::Int32),
        ("track_commit_timestamp", CType::Bool),
        ("maxAlign", CType::Int32),
        ("floatFormat", CType::Int64),
        ("blcksz", CType::Int32),
        ("relseg_size", CType::Int32),
        ("xlog_blcksz", CType::Int32),
        ("xlog_seg_size", CType::Int32),
        ("nameDataLen", CType::Int32),
        ("indexMaxKeys", CType::Int32),
        ("toast_max_chunk_size", CType::Int32),
        ("loblksize", CType::Int32),
    ]);
    // 13 made float4 always pass-by-value and dropped the flag.
    if major < 13 {
        fields.push(("float4ByVal", CType::Bool));
    }
    fields.extend([
        ("float8ByVal", CType::Bool),
        ("data_checksum_version", CType::Int32),
    ]);
    // 18 records whether char was signed on the platform that ran initdb.
    if major >= 18 {
        fields.push(("default_char_signedness", CType::Bool));
    }
    fields.extend([
        ("mock_authentication_nonce", CType::Bytes(32)),
        ("crc", CType::Int32),
    ]);
    fields
}

impl ControlLayout {
    /// The layout for a version; `None` when pgkeep does not support it.
    pub fn of(version: PgVersion) -> Option<ControlLayout> {
        if !version.is_supported() {
            return None;
        }
        let (check_point, _) = lay_out(&check_point_fields(version));
        let (control, _) = lay_out(&control_fields(version));
        let find = |offsets: &[(&str, usize)], name: &str| {
            offsets
                .iter()
                .find(|(field, _)| *field == name)
                .map(|(_, offset)| *offset)
        };
        let at = |name: &str| find(&control, name);
        Some(ControlLayout {
            system_identifier: at("system_identifier")?,
            pg_control_version: at("pg_control_version")?,
            catalog_version_no: at("catalog_version_no")?,
            state: at("state")?,
            check_point: at("checkPoint")?,
            this_timeline_id: at("checkPointCopy")? + find(&check_point, "ThisTimeLineID")?,
            blcksz: at("blcksz")?,
            xlog_seg_size: at("xlog_seg_size")?,
            data_checksum_version: at("data_checksum_version")?,
            crc: at("crc")?,
        })
    }

    /// How many bytes a file must have to hold every field read.
    pub fn min_len(&self) -> usize {
        self.crc + 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offsets observed in the fixtures: (major, checkPointCopy.ThisTimeLineID, blcksz,
    /// xlog_seg_size, data_checksum_version, crc). The crc offset is where the stored CRC-32C
    /// of the preceding bytes was found; the others are where 1, 8192, 16 MiB and 1 were.
    const OBSERVED: [(u32, usize, usize, usize, usize, usize); 9] = [
        (10, 56, 216, 228, 252, 288),
        (11, 48, 208, 220, 244, 280),
        (12, 48, 216, 228, 252, 288),
        (13, 48, 216, 228, 252, 288),
        (14, 48, 216, 228, 252, 288),
        (15, 48, 216, 228, 252, 288),
        (16, 48, 216, 228, 252, 288),
        (17, 48, 216, 228, 252, 288),
        (18, 48, 216, 228, 252, 292),
    ];

    #[test]
    fn computed_offsets_match_the_files_of_every_version() {
        for (major, timeline, blcksz, seg_size, checksum, crc) in OBSERVED {
            let layout = ControlLayout::of(PgVersion::from_major(major)).unwrap();
            assert_eq!(layout.system_identifier, 0, "{major}");
            assert_eq!(layout.pg_control_version, 8, "{major}");
            assert_eq!(layout.catalog_version_no, 12, "{major}");
            assert_eq!(layout.state, 16, "{major}");
            assert_eq!(layout.check_point, 32, "{major}");
            assert_eq!(layout.this_timeline_id, timeline, "{major}");
            assert_eq!(layout.blcksz, blcksz, "{major}");
            assert_eq!(layout.xlog_seg_size, seg_size, "{major}");
            assert_eq!(layout.data_checksum_version, checksum, "{major}");
            assert_eq!(layout.crc, crc, "{major}");
        }
    }

    #[test]
    fn check_point_sizes_follow_full_transaction_id() {
        let size = |major| lay_out(&check_point_fields(PgVersion::from_major(major))).1;
        assert_eq!(size(11), 80);
        assert_eq!(size(12), 88);
        assert_eq!(size(17), 88);
    }

    #[test]
    fn unsupported_versions_have_no_layout() {
        assert_eq!(ControlLayout::of(PgVersion::parse("9.6").unwrap()), None);
        assert_eq!(ControlLayout::of(PgVersion::from_major(19)), None);
    }
}
