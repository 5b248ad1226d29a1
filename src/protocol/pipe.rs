//! Pipe ends with a time limit: a read or write that waits longer than `protocol-timeout`
//! fails with `TimedOut` instead of hanging the command forever on a stuck remote.
//!
//! The local side reads ssh's stdout and writes its stdin through these. Each wait is a
//! `poll` on the descriptor; the write end is non-blocking so a full pipe is waited on by
//! `poll`, not by `write`.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Waits until `fd` is ready for `events`; `TimedOut` after `timeout`.
fn wait(fd: &impl AsFd, events: PollFlags, timeout: Duration, what: &str) -> std::io::Result<()> {
    let millis = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let timeout = PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX);
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), events)];
        match poll(&mut fds, timeout) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("timeout after {millis}ms waiting for {what}"),
                ));
            }
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(std::io::Error::from(errno)),
        }
    }
}

/// The read end of a pipe, waiting at most `timeout` for each read.
pub struct TimedReader<R> {
    inner: R,
    timeout: Duration,
}

impl<R: Read + AsFd> TimedReader<R> {
    pub fn new(inner: R, timeout: Duration) -> TimedReader<R> {
        TimedReader { inner, timeout }
    }
}

impl<R: Read + AsFd> Read for TimedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        wait(&self.inner, PollFlags::POLLIN, self.timeout, "a response")?;
        self.inner.read(buf)
    }
}

/// The write end of a pipe, made non-blocking, waiting at most `timeout` for room.
pub struct TimedWriter<W> {
    inner: W,
    timeout: Duration,
}

impl<W: Write + AsFd + AsRawFd> TimedWriter<W> {
    pub fn new(inner: W, timeout: Duration) -> std::io::Result<TimedWriter<W>> {
        let flags = fcntl(inner.as_fd(), FcntlArg::F_GETFL)?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(inner.as_fd(), FcntlArg::F_SETFL(flags))?;
        Ok(TimedWriter { inner, timeout })
    }
}

impl<W: Write + AsFd> Write for TimedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        loop {
            match self.inner.write(buf) {
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                    wait(
                        &self.inner,
                        PollFlags::POLLOUT,
                        self.timeout,
                        "room to send",
                    )?;
                }
                other => return other,
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_silent_peer_times_out_instead_of_hanging() {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let mut reader = TimedReader::new(ours, Duration::from_millis(50));
        let started = std::time::Instant::now();
        let err = reader.read(&mut [0u8; 10]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(err.to_string(), "timeout after 50ms waiting for a response");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_full_pipe_times_out_and_data_flows_otherwise() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut writer = TimedWriter::new(ours, Duration::from_millis(50)).unwrap();
        writer.write_all(b"hello").unwrap();
        let mut got = [0u8; 5];
        theirs.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        // Nobody reads: the socket buffer fills and the write gives up.
        let chunk = vec![0u8; 1 << 20];
        let err = (0..64)
            .find_map(|_| writer.write_all(&chunk).err())
            .unwrap();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    }
}
