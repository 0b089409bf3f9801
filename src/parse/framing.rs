//! RFC 6587 framing for stream transports (TCP, TLS, Unix stream): octet-counting
//! (`LEN SP MSG`) or non-transparent framing ended by LF, CRLF or NUL, detected per frame so
//! that senders may mix the two on one connection. Pure: it looks at bytes the caller read.

/// What [`Framer::decode`] found at the start of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole frame's payload (without length prefix or trailer).
    Frame {
        /// The SYSLOG-MSG.
        payload: &'a [u8],
        /// The frame was longer than the limit and was cut; the rest is skipped.
        truncated: bool,
    },
    /// Bytes were consumed without producing a frame (the tail of an oversized frame being
    /// skipped, or an empty line).
    Skipped,
    /// The buffer holds no complete frame yet: read more and call again.
    NeedMore,
}

/// Splits a byte stream into frames. Keeps state between calls (the remaining length of an
/// oversized frame being skipped), so use one per connection.
///
/// Contract: the caller keeps every unconsumed byte and appends what it reads next. The
/// framer never answers `NeedMore` when the buffer holds at least `max_frame_len + 32` bytes,
/// so a buffer of that capacity is always enough.
#[derive(Debug)]
pub struct Framer {
    max_frame_len: usize,
}

impl Framer {
    /// A framer that cuts frames longer than `max_frame_len` bytes.
    pub fn new(max_frame_len: usize) -> Framer {
        Framer { max_frame_len }
    }

    /// Decodes the next frame from `buf`. Returns how many bytes of `buf` were consumed and
    /// what was found; the payload borrows from `buf`.
    pub fn decode<'a>(&mut self, buf: &'a [u8]) -> (usize, Decoded<'a>) {
        // Stub: LF framing only; replaced by the full RFC 6587 implementation.
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let truncated = i > self.max_frame_len;
                (i + 1, Decoded::Frame { payload: &buf[..i.min(self.max_frame_len)], truncated })
            }
            None => (0, Decoded::NeedMore),
        }
    }

    /// At end of stream: the final frame if the remaining bytes form one (a last message
    /// without trailer), else `None`.
    pub fn finish<'a>(&mut self, buf: &'a [u8]) -> Option<Decoded<'a>> {
        (!buf.is_empty()).then_some(Decoded::Frame { payload: buf, truncated: false })
    }
}
