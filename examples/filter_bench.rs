//! Filter throughput on PostgreSQL-like data: `cargo run --release --example filter_bench [MiB]`.
//!
//! The data is 8 KiB pages, each half pseudo-random text and half zeros, roughly what a table
//! with free space looks like. Every filter runs through a `FilterChain` in 1 MiB pieces, the
//! way a backup pushes a file, and the rate is MB/s of uncompressed data. `bench/filters.sh`
//! runs this; the numbers belong in docs and design notes, not in tests.

use std::error::Error;
use std::time::Instant;

use pgkeep::io::{CompressType, FilterChain, FilterSpec};

const PAGE: usize = 8192;
const PIECE: usize = 1024 * 1024;

fn pg_like(size: usize) -> Vec<u8> {
    let words: [&[u8]; 12] = [
        b"alpha ",
        b"relation ",
        b"tuple ",
        b"xmin ",
        b"1042 ",
        b"visible ",
        b"frozen ",
        b"page ",
        b"lsn 0/16B3D28 ",
        b"toast ",
        b"index ",
        b"\n",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut data = Vec::with_capacity(size);
    while data.len() < size {
        let start = data.len();
        while data.len() < start + PAGE / 2 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            data.extend_from_slice(words[(state % words.len() as u64) as usize]);
        }
        data.truncate(start + PAGE / 2);
        data.resize(start + PAGE, 0);
    }
    data.truncate(size);
    data
}

/// Pushes `input` through a chain of `specs` and returns the output (when `keep`) and the rate
/// in MB/s of `rate_bytes`. The output buffer is allocated up front so that its growth is not
/// measured.
fn run(
    specs: &[FilterSpec],
    input: &[u8],
    rate_bytes: usize,
    keep: bool,
) -> Result<(Vec<u8>, f64), Box<dyn Error>> {
    let mut chain = FilterChain::from_specs(specs)?;
    let mut output = Vec::with_capacity(if keep { input.len() } else { 0 });
    let started = Instant::now();
    for piece in input.chunks(PIECE) {
        let out = chain.process(piece)?;
        if keep {
            output.extend_from_slice(out);
        }
    }
    let (tail, _) = chain.finish()?;
    output.extend_from_slice(tail);
    let seconds = started.elapsed().as_secs_f64();
    Ok((output, rate_bytes as f64 / seconds / 1e6))
}

/// Decompresses `packed` and checks it against `expected` piece by piece, so no second copy of
/// the data is made; returns MB/s of decompressed data (the check is outside the timing).
fn unpack(kind: CompressType, packed: &[u8], expected: &[u8]) -> Result<f64, Box<dyn Error>> {
    let mut chain = FilterChain::from_specs(&[FilterSpec::Decompress { kind }])?;
    let (mut offset, mut seconds) = (0, 0.0);
    let check = |out: &[u8], offset: &mut usize| -> Result<(), Box<dyn Error>> {
        let end = *offset + out.len();
        if end > expected.len() || out != &expected[*offset..end] {
            return Err(format!("{} round trip differs at {}", kind.name(), *offset).into());
        }
        *offset = end;
        Ok(())
    };
    for piece in packed.chunks(PIECE) {
        let started = Instant::now();
        let out = chain.process(piece)?;
        seconds += started.elapsed().as_secs_f64();
        check(out, &mut offset)?;
    }
    let started = Instant::now();
    let (tail, _) = chain.finish()?;
    seconds += started.elapsed().as_secs_f64();
    check(tail, &mut offset)?;
    if offset != expected.len() {
        return Err(format!("{} round trip is short", kind.name()).into());
    }
    Ok(expected.len() as f64 / seconds / 1e6)
}

fn main() -> Result<(), Box<dyn Error>> {
    let mib: usize = match std::env::args().nth(1) {
        Some(text) => text.parse()?,
        None => 256,
    };
    // An optional second argument keeps only the compression types it names (e.g. `lz4`), to
    // count one filter's instructions under callgrind.
    let only = std::env::args().nth(2);
    let data = pg_like(mib * 1024 * 1024);
    #[cfg(target_arch = "x86_64")]
    println!(
        "cpu: sha_ni={} avx2={}",
        std::arch::is_x86_feature_detected!("sha"),
        std::arch::is_x86_feature_detected!("avx2")
    );
    println!("data: {mib} MiB of 8 KiB pages, half text, half zeros");
    println!("{:<24} {:>10} {:>8}", "filter", "MB/s", "ratio");
    for (name, spec) in [("size", FilterSpec::Size), ("sha256", FilterSpec::Hash)] {
        let (_, rate) = run(&[spec], &data, data.len(), false)?;
        println!("{name:<24} {rate:>10.0} {:>8}", "-");
    }
    for kind in [CompressType::Gz, CompressType::Lz4, CompressType::Zst] {
        if only
            .as_deref()
            .is_some_and(|only| !only.contains(kind.name()))
        {
            continue;
        }
        let level = kind.default_level();
        let compress = [FilterSpec::Compress { kind, level }];
        let (packed, rate) = run(&compress, &data, data.len(), true)?;
        let ratio = data.len() as f64 / packed.len() as f64;
        let name = format!("compress {} (level {level})", kind.name());
        println!("{name:<24} {rate:>10.0} {ratio:>8.2}");
        let rate = unpack(kind, &packed, &data)?;
        println!(
            "{:<24} {rate:>10.0} {:>8}",
            format!("decompress {}", kind.name()),
            "-"
        );
    }
    // The chain a backup runs per file with the default compression.
    let backup = [
        FilterSpec::Size,
        FilterSpec::Hash,
        FilterSpec::Compress {
            kind: CompressType::Zst,
            level: 3,
        },
        FilterSpec::Size,
    ];
    let (_, rate) = run(&backup, &data, data.len(), false)?;
    println!("{:<24} {rate:>10.0} {:>8}", "size+sha256+zst+size", "-");
    // The same chain built anew for every 16 KiB file, as for the small files of a cluster
    // with many tables: the per-file cost of creating the filters shows here.
    for kind in [CompressType::Gz, CompressType::Lz4, CompressType::Zst] {
        if only
            .as_deref()
            .is_some_and(|only| !only.contains(kind.name()))
        {
            continue;
        }
        let level = kind.default_level();
        let small = [
            FilterSpec::Size,
            FilterSpec::Hash,
            FilterSpec::Compress { kind, level },
            FilterSpec::Size,
        ];
        let started = Instant::now();
        let files = data.chunks(16 * 1024).take(4096);
        let count = files.len();
        for file in files {
            run(&small, file, file.len(), false)?;
        }
        let per_file = started.elapsed().as_secs_f64() * 1e6 / count as f64;
        println!(
            "{:<24} {per_file:>7.1} us/file",
            format!("16 KiB files, {}", kind.name())
        );
    }
    Ok(())
}
