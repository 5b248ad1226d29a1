//! Frames: how bytes are cut into messages on the protocol's byte stream.
//!
//! Every frame is a one-byte type, a four-byte big-endian length and that many bytes. A
//! `Message` frame holds one JSON document (a greeting, a request, a response); a `Data` frame
//! holds raw bytes of a file stream; an `End` frame (empty) closes a stream. Data is never
//! wrapped in JSON, so a file crosses the wire at its own size plus five bytes per chunk. This
//! file knows nothing of what messages mean; see `message.rs`.

use std::io::{Read, Write};

use crate::error::{Error, ErrorKind, Result};

/// The largest frame accepted: anything bigger is not pgkeep talking (a shell's banner, a
/// corrupted stream) and is refused instead of allocated.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// What a frame's buffer starts with before its bytes arrive: a data chunk's size.
const FIRST_ALLOCATION: usize = 256 * 1024;

/// The kinds of frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameType {
    Message,
    Data,
    End,
}

impl FrameType {
    fn code(self) -> u8 {
        match self {
            FrameType::Message => b'M',
            FrameType::Data => b'D',
            FrameType::End => b'E',
        }
    }

    fn from_code(code: u8) -> Option<FrameType> {
        match code {
            b'M' => Some(FrameType::Message),
            b'D' => Some(FrameType::Data),
            b'E' => Some(FrameType::End),
            _ => None,
        }
    }
}

/// One frame as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Message(Vec<u8>),
    Data(Vec<u8>),
    End,
}

/// Writes one frame. The caller flushes when a peer must see it.
pub fn write_frame(out: &mut dyn Write, kind: FrameType, payload: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|len| *len as usize <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::other("frame too large"))?;
    let mut header = [0u8; 5];
    header[0] = kind.code();
    header[1..].copy_from_slice(&len.to_be_bytes());
    out.write_all(&header)?;
    out.write_all(payload)
}

/// Reads one frame; `Ok(None)` at a clean end of stream (before the first byte of a frame).
/// `peer` names the other side in messages.
pub fn read_frame(input: &mut dyn Read, peer: &str) -> Result<Option<Frame>> {
    let mut header = [0u8; 5];
    let mut got = 0;
    while got < header.len() {
        match input.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(truncated(peer)),
            Ok(n) => got += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(read_error(peer, err)),
        }
    }
    let kind = FrameType::from_code(header[0]).ok_or_else(|| {
        Error::new(
            ErrorKind::Protocol,
            format!(
                "invalid frame from {peer}: unexpected byte 0x{:02x}",
                header[0]
            ),
        )
        .with_hint(
            "is the remote command pgkeep, and does the remote shell print nothing on login?",
        )
    })?;
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > MAX_FRAME {
        return Err(Error::new(
            ErrorKind::Protocol,
            format!("invalid frame from {peer}: length {len} is over the limit of {MAX_FRAME}"),
        ));
    }
    // The buffer grows with the bytes that arrive, not with the length the header claims: a
    // peer that announces 64 MiB and sends ten bytes costs ten bytes.
    let mut payload = Vec::with_capacity(len.min(FIRST_ALLOCATION));
    let mut limited = input.take(len as u64);
    loop {
        match limited.read_to_end(&mut payload) {
            Ok(_) => break,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(read_error(peer, err)),
        }
    }
    if payload.len() < len {
        return Err(truncated(peer));
    }
    Ok(Some(match kind {
        FrameType::Message => Frame::Message(payload),
        FrameType::Data => Frame::Data(payload),
        FrameType::End => Frame::End,
    }))
}

fn truncated(peer: &str) -> Error {
    Error::new(
        ErrorKind::Protocol,
        format!("connection to {peer} ended in the middle of a message"),
    )
}

fn read_error(peer: &str, err: std::io::Error) -> Error {
    crate::io::stream::from_io_error(err, ErrorKind::Protocol, &format!("read from {peer}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut wire = Vec::new();
        write_frame(&mut wire, FrameType::Message, b"{\"a\":1}").unwrap();
        write_frame(&mut wire, FrameType::Data, &[0, 1, 2]).unwrap();
        write_frame(&mut wire, FrameType::End, &[]).unwrap();
        let mut input = wire.as_slice();
        assert_eq!(
            read_frame(&mut input, "peer").unwrap(),
            Some(Frame::Message(b"{\"a\":1}".to_vec()))
        );
        assert_eq!(
            read_frame(&mut input, "peer").unwrap(),
            Some(Frame::Data(vec![0, 1, 2]))
        );
        assert_eq!(read_frame(&mut input, "peer").unwrap(), Some(Frame::End));
        assert_eq!(read_frame(&mut input, "peer").unwrap(), None);
    }

    #[test]
    fn garbage_and_truncation_are_protocol_errors() {
        let err = read_frame(&mut &b"Welcome to host\n"[..], "'db'").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert_eq!(
            err.message(),
            "invalid frame from 'db': unexpected byte 0x57"
        );
        let mut wire = Vec::new();
        write_frame(&mut wire, FrameType::Data, &[1; 100]).unwrap();
        wire.truncate(50);
        let err = read_frame(&mut wire.as_slice(), "'db'").unwrap_err();
        assert_eq!(
            err.message(),
            "connection to 'db' ended in the middle of a message"
        );
        let huge = [b'D', 0xff, 0xff, 0xff, 0xff];
        let err = read_frame(&mut &huge[..], "'db'").unwrap_err();
        assert!(
            err.message().contains("over the limit"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn a_claimed_length_is_not_allocated_before_the_bytes_arrive() {
        // 60 MiB announced, 3 bytes sent: truncated, and the buffer never grew to 60 MiB.
        let mut wire = vec![b'M'];
        wire.extend_from_slice(&(60u32 << 20).to_be_bytes());
        wire.extend_from_slice(b"abc");
        let mut reader = Counting::new(&wire);
        let err = read_frame(&mut reader, "'db'").unwrap_err();
        assert_eq!(
            err.message(),
            "connection to 'db' ended in the middle of a message"
        );
        assert!(
            reader.largest_buffer <= FIRST_ALLOCATION,
            "{}",
            reader.largest_buffer
        );
    }

    /// A reader over `bytes` that notes the largest buffer it was asked to fill: the decoder's
    /// allocation shows in the buffers it reads into.
    struct Counting<'a> {
        bytes: &'a [u8],
        largest_buffer: usize,
    }

    impl<'a> Counting<'a> {
        fn new(bytes: &'a [u8]) -> Counting<'a> {
            Counting {
                bytes,
                largest_buffer: 0,
            }
        }
    }

    impl Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.largest_buffer = self.largest_buffer.max(buf.len());
            self.bytes.read(buf)
        }
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        /// A few valid frames, as bytes.
        fn valid_wire() -> impl Strategy<Value = Vec<u8>> {
            let frame = (0u8..3, proptest::collection::vec(any::<u8>(), 0..64));
            proptest::collection::vec(frame, 1..4).prop_map(|frames| {
                let mut wire = Vec::new();
                for (kind, payload) in frames {
                    let kind = [FrameType::Message, FrameType::Data, FrameType::End][kind as usize];
                    let payload = if kind == FrameType::End {
                        &[][..]
                    } else {
                        &payload[..]
                    };
                    write_frame(&mut wire, kind, payload).unwrap();
                }
                wire
            })
        }

        /// Reads frames until the end or an error; checks what every frame may hold.
        fn decode_all(wire: &[u8]) {
            let mut reader = Counting::new(wire);
            let mut consumed_payload = 0usize;
            loop {
                match read_frame(&mut reader, "'peer'") {
                    Ok(Some(Frame::Message(payload) | Frame::Data(payload))) => {
                        consumed_payload += payload.len();
                        assert!(consumed_payload <= wire.len());
                    }
                    Ok(Some(Frame::End)) => {}
                    Ok(None) => break,
                    Err(err) => {
                        assert_eq!(err.kind(), ErrorKind::Protocol);
                        break;
                    }
                }
            }
            // Whatever a header claimed, no buffer grew past what could arrive plus the first
            // allocation.
            assert!(reader.largest_buffer <= FIRST_ALLOCATION.max(wire.len()) + 32);
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            #[test]
            fn arbitrary_bytes_never_panic_or_over_allocate(
                wire in proptest::collection::vec(any::<u8>(), 0..256)
            ) {
                decode_all(&wire);
            }

            #[test]
            fn mutated_frames_never_panic_or_over_allocate(
                wire in valid_wire(),
                flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
                cut in any::<prop::sample::Index>(),
            ) {
                let mut wire = wire;
                for (at, byte) in flips {
                    let at = at.index(wire.len());
                    wire[at] = byte;
                }
                let end = cut.index(wire.len() + 1);
                decode_all(&wire[..end]);
            }
        }
    }
}
