//! pg_control of every supported version, WAL segment headers and names, timeline history
//! files.

use super::*;

/// pg_control with its CRC-32C recomputed for the layout of `major`, as an attacker would.
fn recrc(bytes: &mut [u8], major: u32) {
    let layout = ControlLayout::of(PgVersion::from_major(major))
        .unwrap_or_else(|| panic!("no pg_control layout for PostgreSQL {major}"));
    if bytes.len() >= layout.min_len() {
        let crc = crc32c::crc32c(&bytes[..layout.crc]);
        bytes[layout.crc..layout.crc + 4].copy_from_slice(&crc.to_le_bytes());
    }
}

proptest! {
    #![proptest_config(config())]

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

/// The fixtures parse: the mutations start from what initdb wrote.
#[test]
fn the_seed_fixtures_are_valid() {
    for major in MAJORS {
        ControlData::parse(&fixture(major, "pg_control")).unwrap();
        WalHeader::parse(&fixture(major, "wal-first-page")).unwrap();
    }
}
