//! Page checksum verification throughput: `cargo run --release --example page_bench [MiB]`.
//!
//! Builds valid 8 KiB pages (a header, pseudo-random tuple bytes, the checksum PostgreSQL
//! would store), 256 MiB by default, and pushes them through a `PageChecksumFilter` in 1 MiB
//! pieces, the way a backup does, then once more in pieces of 8191 bytes so every page but a
//! few straddles two pieces. The rate is MB/s of pages verified; every page passes, so the
//! whole checksum runs for each.

use std::error::Error;
use std::time::Instant;

use pgkeep::io::filter::{Filter, FilterResult};
use pgkeep::pg::Lsn;
use pgkeep::pg::page::{PAGE_SIZE, PageChecksumFilter, pg_checksum_page};

fn pages(size: usize) -> Vec<u8> {
    let mut data = vec![0u8; size / PAGE_SIZE * PAGE_SIZE];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    // `data` is a whole number of pages, so the remainder `as_chunks_mut` leaves is empty.
    for (blkno, page) in data.as_chunks_mut::<PAGE_SIZE>().0.iter_mut().enumerate() {
        page[4..8].copy_from_slice(&0x0100_0000u32.to_ne_bytes());
        page[12..14].copy_from_slice(&200u16.to_ne_bytes());
        page[14..16].copy_from_slice(&1024u16.to_ne_bytes());
        for byte in page[1024..].iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = b'a' + (state % 26) as u8;
        }
        let checksum = pg_checksum_page(page, blkno as u32);
        page[8..10].copy_from_slice(&checksum.to_ne_bytes());
    }
    data
}

fn run(data: &[u8], piece: usize) -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    let mut filter = PageChecksumFilter::new(0, Lsn(u64::MAX));
    let mut out = Vec::new();
    for chunk in data.chunks(piece) {
        filter.process(chunk, &mut out)?;
    }
    let result = filter.finish(&mut out)?;
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Some(FilterResult::PageChecksum(result)) if result.invalid.is_empty() => {}
        other => return Err(format!("unexpected result {other:?}").into()),
    }
    println!(
        "page checksum, {piece:>7}-byte pieces: {:>8.0} MB/s ({} pages in {seconds:.3} s)",
        data.len() as f64 / seconds / 1e6,
        data.len() / PAGE_SIZE
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let mib: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 256,
    };
    let data = pages(mib * 1024 * 1024);
    for piece in [1024 * 1024, 8191] {
        run(&data, piece)?;
    }
    Ok(())
}
