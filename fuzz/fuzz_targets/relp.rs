//! The RELP frame decoder (`parse::relp`) on any byte stream, read in pieces whose sizes come
//! from the input's first bytes, with a small data limit so oversized frames are exercised
//! too; and the answer and offer readers on each frame's data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logwell::parse::relp::{offer, read_rsp, Decoded, Decoder, MAX_HEADER};

fuzz_target!(|data: &[u8]| {
    let (max, cut, stream) = match data {
        [a, b, rest @ ..] => (usize::from(*a) * 4 + 1, usize::from(*b) + 1, rest),
        _ => return,
    };
    let mut decoder = Decoder::new(max);
    let mut buf: Vec<u8> = Vec::new();
    for piece in stream.chunks(cut) {
        buf.extend_from_slice(piece);
        loop {
            let len = buf.len();
            let (used, d) = decoder.decode(&buf);
            assert!(used <= len);
            match d {
                Decoded::Frame(f) => {
                    assert!(f.data.len() <= max);
                    assert!(f.command.len() <= 32 && !f.command.is_empty());
                    let _ = read_rsp(f.data);
                    let _ = offer(f.data, "commands");
                }
                Decoded::NeedMore => {
                    // Never more waiting than one header and the data up to the limit.
                    assert!(
                        len <= max + MAX_HEADER + 1,
                        "NeedMore with {len} bytes, max {max}"
                    );
                    assert_eq!(used, 0);
                    break;
                }
                Decoded::Skipped => {}
                // The stream is unreadable from here: the server ends the session.
                Decoded::Error(_) => return,
            }
            assert!(used > 0, "no progress on {:?}", &buf[..buf.len().min(64)]);
            buf.drain(..used);
        }
    }
});
