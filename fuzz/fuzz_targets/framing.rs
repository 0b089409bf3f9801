//! The RFC 6587 framing decoder on any byte stream, read in pieces whose sizes come from the
//! input's first bytes, with a small frame limit so truncation is exercised too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logwell::parse::framing::{Decoded, Framer};

fuzz_target!(|data: &[u8]| {
    let (max, cut, stream) = match data {
        [a, b, rest @ ..] => (usize::from(*a) * 4 + 1, usize::from(*b) + 1, rest),
        _ => return,
    };
    let mut framer = Framer::new(max);
    let mut buf: Vec<u8> = Vec::new();
    for piece in stream.chunks(cut) {
        buf.extend_from_slice(piece);
        loop {
            let len = buf.len();
            let (used, d) = framer.decode(&buf);
            assert!(used <= len);
            match d {
                Decoded::Frame { payload, .. } => assert!(payload.len() <= max),
                Decoded::NeedMore => {
                    // The contract: never more waiting than one frame and its header.
                    assert!(len < max + 32, "NeedMore with {len} bytes buffered, max {max}");
                    break;
                }
                Decoded::Skipped | Decoded::Error(_) => {}
            }
            assert!(used > 0, "no progress on {:?}", &buf[..buf.len().min(64)]);
            buf.drain(..used);
        }
    }
    let _ = framer.finish(&buf);
});
