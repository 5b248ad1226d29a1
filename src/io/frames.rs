//! Hashing a file while compressing it as independent frames on several cores.
//!
//! archive-push must hash a WAL segment (its name in the archive carries the SHA-256) and
//! compress it, and PostgreSQL waits for each call: its latency is what counts. The file is read
//! once, in pieces of [`FRAME_SIZE`] into a few reused buffers (fresh memory costs more than the
//! read itself: faulting in 16 MiB of new pages takes longer than copying them from the page
//! cache), hashed in order by the reading thread, and each piece is compressed as its own frame
//! by whichever thread is free, the reading one included once it has nothing to read. Frames are
//! handed to the caller's sink in order as soon as they are done (archive-push writes each to
//! the file at once, so the device writes them while later pieces are compressed); concatenated
//! they are one valid stream for every compression type (gzip members, zstd and lz4 frames),
//! and a 512 KiB frame compresses WAL as well as one frame for the whole file (measured: zstd
//! within 0.5%, lz4 and gzip the same, their windows being smaller). Smaller pieces than the
//! 1 MiB of before mean fewer fresh pages to fault in for the buffers of a lone push.
//!
//! Memory is bounded by the buffers: threads + 2 pieces, and as many frames, all reused.

use std::io::Read;

use crossbeam_channel::{Receiver, Sender, unbounded};

use crate::error::{Error, ErrorKind, Result};
use crate::io::stream::read_full;
use crate::io::{FilterChain, FilterResult, FilterSpec};

/// The size of a piece read and of the input of one frame.
pub const FRAME_SIZE: usize = 1 << 19;

/// Buffers kept from one file to the next: a process pushing many files reuses its memory.
#[derive(Default)]
pub struct FrameBuffers {
    pieces: Vec<Vec<u8>>,
    frames: Vec<Vec<u8>>,
}

/// A file read, hashed and compressed.
#[derive(Debug)]
pub struct Framed {
    /// SHA-256 of the file, hex.
    pub checksum: String,
    pub size: u64,
    /// How many frames the sink was given.
    pub frames: usize,
}

/// A piece to compress: its index, the buffer and how much of it is data.
type Job = (usize, Vec<u8>, usize);
/// A compressed piece: its index, the frame (or why not), and the buffer to reuse.
type Done = (usize, Result<Vec<u8>>, Vec<u8>);

/// Reads `source` (named `describe` in errors) to its end, hashing it and compressing every
/// piece as a frame of `spec` on `threads` threads (the calling one included). `inspect` sees
/// the first piece before anything else is done with it (a WAL header check); its error stops
/// the read. `sink` gets every frame, in file order, on the calling thread; its error stops
/// the read too.
pub fn hash_and_compress(
    source: &mut dyn Read,
    describe: &str,
    spec: &FilterSpec,
    threads: usize,
    buffers: &mut FrameBuffers,
    inspect: &mut dyn FnMut(&[u8]) -> Result<()>,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<Framed> {
    let threads = threads.max(1);
    let mut hasher = FilterChain::from_specs(&[FilterSpec::Hash])?;
    let mut frames: Vec<Option<Vec<u8>>> = Vec::new();
    let mut size = 0u64;
    let (work_tx, work_rx) = unbounded::<Job>();
    let (done_tx, done_rx) = unbounded::<Done>();
    let free_frames = std::sync::Mutex::new(std::mem::take(&mut buffers.frames));
    let mut pieces = std::mem::take(&mut buffers.pieces);
    let result = std::thread::scope(|scope| -> Result<()> {
        for _ in 1..threads {
            let (work_rx, done_tx, free_frames) = (work_rx.clone(), done_tx.clone(), &free_frames);
            scope.spawn(move || {
                for job in work_rx.iter() {
                    if done_tx.send(compress_job(job, spec, free_frames)).is_err() {
                        break;
                    }
                }
            });
        }
        let mut pool = Pool {
            spec,
            free_frames: &free_frames,
            pieces: &mut pieces,
            allocated: 0,
            limit: threads + 2,
            work_tx: Some(work_tx),
            work_rx: &work_rx,
            done_rx: &done_rx,
            sent: 0,
            returned: 0,
            frames: &mut frames,
            next_out: 0,
            sink,
            inline: threads == 1,
        };
        let read = pool.read_all(source, describe, &mut hasher, &mut size, inspect);
        // Whatever happened, the workers stop once the queue is empty, and every piece sent
        // comes back (its frame or its error) before the scope ends.
        pool.work_tx = None;
        let finished = pool.finish();
        let all_out = if pool.next_out == pool.frames.len() {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::Assert, "a frame went missing"))
        };
        read.and(finished).and(all_out)
    });
    buffers.pieces = pieces;
    let mut free = free_frames.into_inner().unwrap_or_default();
    free.extend(frames.iter_mut().filter_map(Option::take));
    buffers.frames = free;
    result?;
    let (_, results) = hasher.finish()?;
    let checksum = match results.first() {
        Some(FilterResult::Hash(hash)) => hash.clone(),
        _ => return Err(Error::new(ErrorKind::Assert, "hash filter gave no result")),
    };
    Ok(Framed {
        checksum,
        size,
        frames: frames.len(),
    })
}

/// The reading thread's side: the buffers, the queues and the frames gathered.
struct Pool<'a, 's> {
    spec: &'a FilterSpec,
    free_frames: &'a std::sync::Mutex<Vec<Vec<u8>>>,
    pieces: &'a mut Vec<Vec<u8>>,
    /// Buffers made so far for this file (reused ones count too) and the most there may be.
    allocated: usize,
    limit: usize,
    work_tx: Option<Sender<Job>>,
    work_rx: &'a Receiver<Job>,
    done_rx: &'a Receiver<Done>,
    /// Pieces queued for the workers, and pieces back from them (or compressed here).
    sent: usize,
    returned: usize,
    /// Frames done but not yet given to the sink (one slot per piece read).
    frames: &'s mut Vec<Option<Vec<u8>>>,
    /// The next frame the sink gets.
    next_out: usize,
    sink: &'s mut dyn FnMut(&[u8]) -> Result<()>,
    /// One thread: compress each piece right after hashing it.
    inline: bool,
}

impl Pool<'_, '_> {
    fn read_all(
        &mut self,
        source: &mut dyn Read,
        describe: &str,
        hasher: &mut FilterChain,
        size: &mut u64,
        inspect: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        for index in 0.. {
            let mut piece = self.free_piece()?;
            let len = read_full(source, &mut piece)
                .map_err(|e| Error::io(ErrorKind::FileRead, "read", describe, &e))?;
            if len == 0 && index > 0 {
                self.pieces.push(piece);
                return Ok(());
            }
            if index == 0 {
                inspect(&piece[..len])?;
            }
            hasher.process(&piece[..len])?;
            *size += len as u64;
            self.frames.push(None);
            let job = (index, piece, len);
            match &self.work_tx {
                Some(work_tx) if !self.inline => {
                    work_tx.send(job).map_err(|_| {
                        Error::new(ErrorKind::Assert, "compression workers stopped")
                    })?;
                    self.sent += 1;
                }
                _ => {
                    let done = compress_job(job, self.spec, self.free_frames);
                    self.take(done)?;
                }
            }
            if len < FRAME_SIZE {
                return Ok(());
            }
        }
        Ok(())
    }

    /// A buffer for the next piece: a free one, a new one while under the limit, or else one
    /// freed by compressing a queued piece here (or waiting for a worker to finish one).
    fn free_piece(&mut self) -> Result<Vec<u8>> {
        loop {
            while let Ok(done) = self.done_rx.try_recv() {
                self.returned += 1;
                self.take(done)?;
            }
            if self.allocated < self.limit {
                self.allocated += 1;
                let mut piece = self.pieces.pop().unwrap_or_default();
                piece.resize(FRAME_SIZE, 0);
                return Ok(piece);
            }
            if let Some(piece) = self.pieces.pop() {
                return Ok(piece);
            }
            let done = self.next_done()?;
            self.take(done)?;
        }
    }

    /// The next piece back: one still queued, compressed here, or else one a worker finishes.
    fn next_done(&mut self) -> Result<Done> {
        self.returned += 1;
        match self.work_rx.try_recv() {
            Ok(job) => Ok(compress_job(job, self.spec, self.free_frames)),
            Err(_) => self
                .done_rx
                .recv()
                .map_err(|_| Error::new(ErrorKind::Assert, "compression workers stopped")),
        }
    }

    /// Files a compressed piece, keeps its buffer and gives the sink every frame now in order.
    fn take(&mut self, (index, frame, piece): Done) -> Result<()> {
        self.pieces.push(piece);
        let frame = frame?;
        match self.frames.get_mut(index) {
            Some(slot) => *slot = Some(frame),
            None => return Err(Error::new(ErrorKind::Assert, "frame index out of range")),
        }
        while let Some(frame) = self.frames.get_mut(self.next_out).and_then(Option::take) {
            let sunk = (self.sink)(&frame);
            if let Ok(mut free) = self.free_frames.lock() {
                free.push(frame);
            }
            sunk?;
            self.next_out += 1;
        }
        Ok(())
    }

    /// Compresses what is still queued here too, then gathers every outstanding frame.
    fn finish(&mut self) -> Result<()> {
        let mut first_error = None;
        while self.returned < self.sent {
            let taken = self.next_done().and_then(|done| self.take(done));
            if let Err(err) = taken {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn compress_job(
    (index, piece, len): Job,
    spec: &FilterSpec,
    free_frames: &std::sync::Mutex<Vec<Vec<u8>>>,
) -> Done {
    let mut frame = free_frames
        .lock()
        .ok()
        .and_then(|mut free| free.pop())
        .unwrap_or_default();
    let compressed = compress_frame(&piece[..len], spec, &mut frame).map(|()| frame);
    (index, compressed, piece)
}

/// `bytes` compressed as one frame into `out`, straight from the compressor (whose contexts
/// are reused per thread).
fn compress_frame(bytes: &[u8], spec: &FilterSpec, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    let mut compressor = spec.build()?;
    compressor.process(bytes, out)?;
    compressor.finish(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::CompressType;

    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| if i % 3 == 0 { (i / 7) as u8 } else { 0 })
            .collect()
    }

    fn decompress(kind: CompressType, frames: &[Vec<u8>]) -> Vec<u8> {
        let mut chain = FilterChain::from_specs(&[FilterSpec::Decompress { kind }]).unwrap();
        let mut out = Vec::new();
        for frame in frames {
            out.extend_from_slice(chain.process(frame).unwrap());
        }
        out.extend_from_slice(chain.finish().unwrap().0);
        out
    }

    #[test]
    fn frames_decompress_to_the_file_and_the_hash_is_the_files() {
        for kind in [CompressType::Lz4, CompressType::Zst, CompressType::Gz] {
            for threads in [1, 2, 4] {
                for len in [0, 100, FRAME_SIZE, 3 * FRAME_SIZE + 17, 16 * FRAME_SIZE] {
                    let data = sample(len);
                    let mut buffers = FrameBuffers::default();
                    let spec = FilterSpec::Compress { kind, level: 1 };
                    let mut seen = None;
                    let mut frames = Vec::new();
                    let framed = hash_and_compress(
                        &mut data.as_slice(),
                        "sample",
                        &spec,
                        threads,
                        &mut buffers,
                        &mut |first| {
                            seen = Some(first.len());
                            Ok(())
                        },
                        &mut |frame| {
                            frames.push(frame.to_vec());
                            Ok(())
                        },
                    )
                    .unwrap();
                    assert_eq!(framed.size, len as u64);
                    assert_eq!(framed.checksum, crate::io::sha256_hex(&data));
                    assert_eq!(seen, Some(len.min(FRAME_SIZE)));
                    assert_eq!(frames.len(), len.div_ceil(FRAME_SIZE).max(1));
                    assert_eq!(framed.frames, frames.len());
                    assert!(
                        decompress(kind, &frames) == data,
                        "{kind:?} {threads} {len}"
                    );
                    assert!(buffers.pieces.len() <= threads + 2);
                    assert!(buffers.frames.len() <= frames.len());
                }
            }
        }
    }

    #[test]
    fn buffers_are_reused_from_file_to_file() {
        let data = sample(5 * FRAME_SIZE);
        let spec = FilterSpec::Compress {
            kind: CompressType::Lz4,
            level: 1,
        };
        let mut buffers = FrameBuffers::default();
        for _ in 0..3 {
            let mut frames = Vec::new();
            hash_and_compress(
                &mut data.as_slice(),
                "s",
                &spec,
                2,
                &mut buffers,
                &mut |_| Ok(()),
                &mut |frame| {
                    frames.push(frame.to_vec());
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(decompress(CompressType::Lz4, &frames), data);
        }
        assert!(buffers.pieces.len() <= 4);
        assert!(buffers.frames.len() <= 5);
    }

    #[test]
    fn an_inspection_error_stops_the_read() {
        let data = sample(3 * FRAME_SIZE);
        let spec = FilterSpec::Compress {
            kind: CompressType::Zst,
            level: 1,
        };
        let mut buffers = FrameBuffers::default();
        let err = hash_and_compress(
            &mut data.as_slice(),
            "s",
            &spec,
            2,
            &mut buffers,
            &mut |_| Err(Error::new(ErrorKind::ArchiveMismatch, "not ours")),
            &mut |_| Ok(()),
        )
        .err()
        .unwrap();
        assert_eq!(err.kind(), ErrorKind::ArchiveMismatch);
    }

    #[test]
    fn a_read_error_is_reported_with_the_name() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::other("disk gone"));
                }
                let n = buf.len().min(self.0);
                buf[..n].fill(1);
                self.0 -= n;
                Ok(n)
            }
        }
        let spec = FilterSpec::Compress {
            kind: CompressType::Lz4,
            level: 1,
        };
        let mut buffers = FrameBuffers::default();
        let err = hash_and_compress(
            &mut Failing(2 * FRAME_SIZE + 5),
            "pg_wal/0001",
            &spec,
            2,
            &mut buffers,
            &mut |_| Ok(()),
            &mut |_| Ok(()),
        )
        .err()
        .unwrap();
        assert_eq!(err.kind(), ErrorKind::FileRead);
        assert!(err.message().contains("pg_wal/0001"), "{}", err.message());
    }

    #[test]
    fn a_sink_error_stops_the_read_and_no_frame_follows_it() {
        let data = sample(6 * FRAME_SIZE);
        let spec = FilterSpec::Compress {
            kind: CompressType::Lz4,
            level: 1,
        };
        let mut buffers = FrameBuffers::default();
        let mut sunk = 0;
        let err = hash_and_compress(
            &mut data.as_slice(),
            "s",
            &spec,
            2,
            &mut buffers,
            &mut |_| Ok(()),
            &mut |_| {
                sunk += 1;
                if sunk == 2 {
                    return Err(Error::new(ErrorKind::FileWrite, "disk full"));
                }
                Ok(())
            },
        )
        .err()
        .unwrap();
        assert_eq!(err.kind(), ErrorKind::FileWrite);
        assert_eq!(sunk, 2, "frames were given to the sink after it failed");
    }
}
