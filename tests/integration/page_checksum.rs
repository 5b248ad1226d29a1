//! Data page checksums against a real PostgreSQL 15 cluster made with `initdb -k`: pgkeep's
//! checksum equals PostgreSQL's own (`pageinspect`'s `page_checksum`) for real pages at any
//! block number, every relation file of a cluster verifies, and a corrupted byte is found in
//! exactly its block, as PostgreSQL's `pg_checksums` finds it.

use std::path::{Path, PathBuf};

use crate::common::{ClusterOptions, PgCluster, pg_bin, run_as_postgres};
use pgkeep::io::filter::{Filter, FilterResult, PageChecksumResult};
use pgkeep::pg::Lsn;
use pgkeep::pg::page::{
    PAGE_SIZE, PageChecksumFilter, RELSEG_SIZE, checked_file, condense, page_checksum, page_lsn,
    pg_checksum_page, recheck,
};

/// Every page is checked: no page's LSN is at or past this.
const CHECK_ALL: Lsn = Lsn(u64::MAX);

/// A running cluster with checksums and a table `t` of about 100 pages; returns the cluster and
/// the table's file, relative to the data directory.
fn cluster_with_table() -> (PgCluster, String) {
    let cluster = PgCluster::init(ClusterOptions::default());
    cluster.start();
    cluster.psql(
        "create table t (id int, payload text);
         insert into t select g, md5(g::text) || repeat('x', g % 50) from generate_series(1, 10000) g;
         checkpoint;",
    );
    let rel = cluster.psql("select pg_relation_filepath('t')");
    (cluster, rel)
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
        .collect()
}

fn as_page(bytes: &[u8]) -> &[u8; PAGE_SIZE] {
    bytes.try_into().expect("a whole page")
}

/// Runs the filter over `data` pushed in pieces of `piece` bytes.
fn verify(data: &[u8], first_block: u32, start_lsn: Lsn, piece: usize) -> PageChecksumResult {
    let mut filter = PageChecksumFilter::new(first_block, start_lsn);
    let mut out = Vec::new();
    for chunk in data.chunks(piece) {
        filter.process(chunk, &mut out).unwrap();
    }
    match filter.finish(&mut out).unwrap() {
        Some(FilterResult::PageChecksum(result)) => result,
        other => panic!("unexpected filter result {other:?}"),
    }
}

/// `pg_checksums --check` on a stopped cluster: its exit status and output.
fn pg_checksums(cluster: &PgCluster) -> (bool, String) {
    let data = cluster.data_dir().display().to_string();
    let output = run_as_postgres(
        pg_bin(15).join("pg_checksums"),
        &["--check", "-D", &data],
        &[],
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

fn files_under(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, found);
        } else {
            found.push(path);
        }
    }
}

#[test]
fn checksums_equal_postgresql_page_checksum_at_any_block_number() {
    let (cluster, _) = cluster_with_table();
    cluster.psql("create extension pageinspect");
    let pages = cluster.psql("select pg_relation_size('t') / 8192");
    let pages: u32 = pages.parse().unwrap();
    assert!(pages > 50, "{pages} pages");

    // Each real page at its own block number, at block numbers of later segments and at the
    // top of the range pageinspect accepts, and with a byte changed: PostgreSQL computes every value here.
    for block in (0..pages).step_by(7) {
        let sql = format!(
            "select encode(get_raw_page('t', {block}), 'hex'),
                    page_checksum(get_raw_page('t', {block}), {block}),
                    page_checksum(get_raw_page('t', {block}), {block} + 131072),
                    page_checksum(get_raw_page('t', {block}), 2147483647),
                    page_checksum(set_byte(get_raw_page('t', {block}), 6000, 0), {block})"
        );
        let row = cluster.psql(&sql);
        let fields: Vec<&str> = row.split('|').collect();
        let mut page = hex_decode(fields[0]);
        // page_checksum returns a smallint: the same 16 bits, signed.
        let theirs = |at: usize| fields[at].parse::<i16>().unwrap() as u16;
        assert_eq!(
            pg_checksum_page(as_page(&page), block),
            theirs(1),
            "block {block}"
        );
        assert_eq!(
            pg_checksum_page(as_page(&page), block + RELSEG_SIZE),
            theirs(2)
        );
        assert_eq!(pg_checksum_page(as_page(&page), i32::MAX as u32), theirs(3));
        page[6000] = 0;
        assert_eq!(pg_checksum_page(as_page(&page), block), theirs(4));
    }

    // Pages of a second segment, checksummed by PostgreSQL for their absolute block numbers,
    // verify when the file is named `.1`, and a corrupted one is reported by its absolute
    // number.
    let first = checked_file("base/5/16384.1").unwrap();
    assert_eq!(first, RELSEG_SIZE);
    let mut segment = Vec::new();
    for index in 0..5u32 {
        let block = first + index;
        let sql = format!(
            "select encode(get_raw_page('t', {index}), 'hex'),
                    page_checksum(get_raw_page('t', {index}), {block})"
        );
        let row = cluster.psql(&sql);
        let (hex, checksum) = row.split_once('|').unwrap();
        let mut page = hex_decode(hex);
        page[8..10].copy_from_slice(&(checksum.parse::<i16>().unwrap() as u16).to_ne_bytes());
        segment.extend_from_slice(&page);
    }
    assert_eq!(
        verify(&segment, first, CHECK_ALL, 10_000),
        PageChecksumResult::default()
    );
    segment[3 * PAGE_SIZE + 7000] ^= 0x10;
    assert_eq!(
        verify(&segment, first, CHECK_ALL, 10_000).invalid,
        vec![first + 3]
    );
    // Counted from block 0, every page is at the wrong place.
    assert_eq!(
        verify(&segment, 0, CHECK_ALL, 10_000).invalid,
        vec![0, 1, 2, 3, 4]
    );
}

#[test]
fn every_relation_file_of_a_cluster_verifies_whatever_the_piece_size() {
    let (cluster, rel) = cluster_with_table();
    cluster.stop();
    let (ok, output) = pg_checksums(&cluster);
    assert!(ok, "{output}");

    let data = std::fs::read(cluster.data_dir().join(&rel)).unwrap();
    assert!(data.len() > 50 * PAGE_SIZE);
    for piece in [1, 100, 8191, 8192, 8193, 1 << 20] {
        let result = verify(&data, 0, CHECK_ALL, piece);
        assert_eq!(result, PageChecksumResult::default(), "piece {piece}");
    }

    let mut files = Vec::new();
    files_under(cluster.data_dir(), &mut files);
    let mut checked = 0;
    for path in files {
        let rel = path.strip_prefix(cluster.data_dir()).unwrap();
        let rel = rel.to_str().unwrap();
        let Some(first) = checked_file(rel) else {
            continue;
        };
        checked += 1;
        let result = verify(&std::fs::read(&path).unwrap(), first, CHECK_ALL, 65536);
        assert_eq!(result, PageChecksumResult::default(), "{rel}");
    }
    // Catalogs, their indexes, free space and visibility maps of three databases.
    assert!(checked > 500, "only {checked} files checked");
}

#[test]
fn a_changed_byte_fails_exactly_its_block() {
    let (cluster, rel) = cluster_with_table();
    cluster.stop();
    let path = cluster.data_dir().join(&rel);
    let clean = std::fs::read(&path).unwrap();
    let mut data = clean.clone();
    let block = 2u32;
    let at = block as usize * PAGE_SIZE + 7000;
    data[at] ^= 0x01;
    std::fs::write(&path, &data).unwrap();

    for piece in [1, 100, 8191, 8193, 1 << 20] {
        assert_eq!(verify(&data, 0, CHECK_ALL, piece).invalid, vec![block]);
    }
    // PostgreSQL agrees.
    let (ok, output) = pg_checksums(&cluster);
    assert!(!ok, "{output}");
    assert!(
        output.contains(&format!("{rel}\", block {block}: calculated checksum")),
        "{output}"
    );
    assert!(output.contains("Bad checksums:  1"), "{output}");

    // A backup that started before the page's last change trusts it: WAL replay rewrites it.
    let page = as_page(&data[block as usize * PAGE_SIZE..][..PAGE_SIZE]);
    let lsn = page_lsn(page);
    assert_eq!(verify(&data, 0, lsn, 8192).invalid, Vec::<u32>::new());
    assert_eq!(verify(&data, 0, Lsn(lsn.0 + 1), 8192).invalid, vec![block]);
    assert_ne!(page_checksum(page), pg_checksum_page(page, block));

    // A file cut mid-page: its whole pages are checked, the cut is reported.
    let cut = &data[..data.len() - 100];
    let result = verify(cut, 0, CHECK_ALL, 1 << 20);
    assert_eq!(result.invalid, vec![block]);
    assert!(result.misaligned);
    assert!(
        !verify(&clean[..clean.len() - 100], 0, CHECK_ALL, 8193)
            .invalid
            .contains(&0)
    );

    // The re-read finds the page still bad, and good once the byte is back.
    assert_eq!(recheck(&path, &[block], 0, CHECK_ALL).unwrap(), vec![block]);
    std::fs::write(&path, &clean).unwrap();
    assert_eq!(
        recheck(&path, &[block], 0, CHECK_ALL).unwrap(),
        Vec::<u32>::new()
    );
    assert_eq!(condense(&[block, block + 1, block + 5]), "2-3, 7");
}
