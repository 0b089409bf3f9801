//! RELP, the Reliable Event Logging Protocol, as librelp speaks it: frames, responses and
//! offers. Pure: it looks at bytes the caller read, never reads, writes or allocates for a
//! frame, and keeps a few words of state per connection.
//!
//! # Frames
//! `TXNR SP COMMAND SP DATALEN [SP DATA] LF`:
//! - `TXNR`: 1 to 9 digits, the transaction number. A client numbers its commands 1, 2, 3 …
//!   (after 999,999,999 it starts again at 1); the server answers each with `rsp` and the
//!   same number, and numbers its own `serverclose` 0.
//! - `COMMAND`: 1 to 32 ASCII letters (`open`, `syslog`, `close`, `rsp`, `serverclose`).
//! - `DATALEN`: 1 to 9 digits, the bytes of `DATA`; with 0, no `SP DATA` (librelp also
//!   accepts a SP before the LF then, and so does this decoder).
//! - The trailer is one LF, checked: a frame whose counted data is not followed by LF means
//!   the peer's counts are wrong, and the stream cannot be read any further.
//!
//! # Oversized frames
//! A frame whose `DATALEN` is over the decoder's limit is delivered with its data cut at the
//! limit and [`Frame::cut`] saying how many bytes were left out; the rest is skipped (across
//! as many [`Decoder::decode`] calls as it takes), never buffered. What to answer is the
//! server's choice (`oversize` in logwell.toml(5)).
//!
//! # Errors
//! Bytes that are not a frame header ([`FrameError`]) leave the stream unreadable: the
//! caller answers what it can and closes, as librelp does.

/// The largest transaction number; the next one is 1.
pub const MAX_TXNR: u64 = 999_999_999;

/// The longest header: 9 digits, SP, 32 letters, SP, 9 digits, SP.
pub const MAX_HEADER: usize = 9 + 1 + 32 + 1 + 9 + 1;

/// The transaction number that follows `txnr`.
pub fn next_txnr(txnr: u64) -> u64 {
    if txnr >= MAX_TXNR {
        1
    } else {
        txnr + 1
    }
}

/// One frame, borrowed from the caller's buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The transaction number.
    pub txnr: u64,
    /// The command, as sent (`syslog`, `open` …).
    pub command: &'a [u8],
    /// The data, cut at the limit when the frame was longer.
    pub data: &'a [u8],
    /// Bytes of data left out past the limit (0 for a whole frame).
    pub cut: usize,
}

/// What [`Decoder::decode`] found at the start of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A frame.
    Frame(Frame<'a>),
    /// Bytes of an oversized frame's rest were consumed.
    Skipped,
    /// No whole frame yet: read more and call again.
    NeedMore,
    /// The stream is not RELP here; nothing more can be read from it.
    Error(FrameError),
}

/// How a stream broke the frame syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The transaction number is missing, too long or not digits.
    #[error("the transaction number is not 1 to 9 digits")]
    BadTxnr,
    /// The command is missing, too long or not letters.
    #[error("the command is not 1 to 32 letters")]
    BadCommand,
    /// The data length is missing, too long or not digits.
    #[error("the data length is not 1 to 9 digits")]
    BadLength,
    /// The counted data is not followed by LF.
    #[error("the frame's data is not followed by its LF trailer (a wrong data length)")]
    NoTrailer,
}

/// Splits a RELP stream into frames; one per connection.
#[derive(Debug, Clone)]
pub struct Decoder {
    max_data: usize,
    /// Bytes of an oversized frame still to skip, its LF trailer included.
    skip: usize,
}

impl Decoder {
    /// A decoder that delivers at most `max_data` bytes of a frame's data.
    pub fn new(max_data: usize) -> Decoder {
        Decoder { max_data, skip: 0 }
    }

    /// The buffer size that always holds a whole header and the data up to the limit.
    pub fn buffer_size(&self) -> usize {
        self.max_data + MAX_HEADER + 1
    }

    /// Decodes the frame at the start of `buf`: returns the bytes consumed and what they were.
    pub fn decode<'a>(&mut self, buf: &'a [u8]) -> (usize, Decoded<'a>) {
        if self.skip > 0 {
            if buf.is_empty() {
                return (0, Decoded::NeedMore);
            }
            if self.skip == 1 {
                self.skip = 0;
                return match buf[0] {
                    b'\n' => (1, Decoded::Skipped),
                    _ => (1, Decoded::Error(FrameError::NoTrailer)),
                };
            }
            // Stop short of the trailer, checked on its own above.
            let n = buf.len().min(self.skip - 1);
            self.skip -= n;
            return (n, Decoded::Skipped);
        }
        let mut at = 0;
        let txnr = match number(buf, &mut at) {
            Field::Done(n) => n,
            Field::More => return (0, Decoded::NeedMore),
            Field::Bad => return (buf.len(), Decoded::Error(FrameError::BadTxnr)),
        };
        let start = at;
        while at < buf.len() && buf[at].is_ascii_alphabetic() && at - start < 32 {
            at += 1;
        }
        if at == buf.len() {
            return (0, Decoded::NeedMore);
        }
        if at == start || buf[at] != b' ' {
            return (buf.len(), Decoded::Error(FrameError::BadCommand));
        }
        let command = &buf[start..at];
        at += 1;
        let datalen = match number_then(buf, &mut at) {
            Field::Done(n) => n as usize,
            Field::More => return (0, Decoded::NeedMore),
            Field::Bad => return (buf.len(), Decoded::Error(FrameError::BadLength)),
        };
        // `at` is on the byte after the digits: SP before data, or the trailer.
        if datalen == 0 {
            let mut end = at;
            if buf[end] == b' ' {
                end += 1;
                if end == buf.len() {
                    return (0, Decoded::NeedMore);
                }
            }
            if buf[end] != b'\n' {
                return (buf.len(), Decoded::Error(FrameError::NoTrailer));
            }
            let frame = Frame {
                txnr,
                command,
                data: &[],
                cut: 0,
            };
            return (end + 1, Decoded::Frame(frame));
        }
        if buf[at] != b' ' {
            return (buf.len(), Decoded::Error(FrameError::BadLength));
        }
        at += 1;
        let kept = datalen.min(self.max_data);
        if datalen > self.max_data {
            if buf.len() < at + kept {
                return (0, Decoded::NeedMore);
            }
            self.skip = datalen - kept + 1;
            let frame = Frame {
                txnr,
                command,
                data: &buf[at..at + kept],
                cut: datalen - kept,
            };
            return (at + kept, Decoded::Frame(frame));
        }
        if buf.len() <= at + datalen {
            return (0, Decoded::NeedMore);
        }
        if buf[at + datalen] != b'\n' {
            return (buf.len(), Decoded::Error(FrameError::NoTrailer));
        }
        let frame = Frame {
            txnr,
            command,
            data: &buf[at..at + datalen],
            cut: 0,
        };
        (at + datalen + 1, Decoded::Frame(frame))
    }
}

enum Field {
    Done(u64),
    More,
    Bad,
}

/// 1 to 9 digits and a SP; `at` ends after the SP.
fn number(buf: &[u8], at: &mut usize) -> Field {
    match number_then(buf, at) {
        Field::Done(n) if buf[*at] == b' ' => {
            *at += 1;
            Field::Done(n)
        }
        Field::Done(_) => Field::Bad,
        other => other,
    }
}

/// 1 to 9 digits; `at` ends on the byte after them, which is there.
fn number_then(buf: &[u8], at: &mut usize) -> Field {
    let start = *at;
    let mut n: u64 = 0;
    while *at < buf.len() && buf[*at].is_ascii_digit() {
        if *at - start == 9 {
            return Field::Bad;
        }
        n = n * 10 + u64::from(buf[*at] - b'0');
        *at += 1;
    }
    if *at == buf.len() {
        return Field::More;
    }
    if *at == start {
        return Field::Bad;
    }
    Field::Done(n)
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends one frame: `TXNR SP COMMAND SP DATALEN [SP DATA] LF`.
pub fn write_frame(out: &mut Vec<u8>, txnr: u64, command: &str, data: &[u8]) {
    push_decimal(out, txnr);
    out.push(b' ');
    out.extend_from_slice(command.as_bytes());
    out.push(b' ');
    push_decimal(out, data.len() as u64);
    if !data.is_empty() {
        out.push(b' ');
        out.extend_from_slice(data);
    }
    out.push(b'\n');
}

/// Appends a response frame: `TXNR rsp LEN CODE SP TEXT [LF OFFERS]`.
pub fn write_rsp(out: &mut Vec<u8>, txnr: u64, code: u16, text: &str, offers: &str) {
    push_decimal(out, txnr);
    out.extend_from_slice(b" rsp ");
    let len = 4
        + text.len()
        + if offers.is_empty() {
            0
        } else {
            1 + offers.len()
        };
    push_decimal(out, len as u64);
    out.push(b' ');
    push_decimal(out, u64::from(code));
    out.push(b' ');
    out.extend_from_slice(text.as_bytes());
    if !offers.is_empty() {
        out.push(b'\n');
        out.extend_from_slice(offers.as_bytes());
    }
    out.push(b'\n');
}

/// A response's status code and text, and the offers after them (`rsp` data).
pub fn read_rsp(data: &[u8]) -> Option<(u16, &[u8], &[u8])> {
    let (head, offers) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[data.len()..]),
    };
    if head.len() < 3 || !head[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = head[..3]
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let text = head.get(4..).unwrap_or_default();
    Some((code, text, offers))
}

/// The value of offer `name` in an `open` command's or answer's data (`name=value` lines;
/// an offer without `=` has an empty value).
pub fn offer<'a>(offers: &'a [u8], name: &str) -> Option<&'a [u8]> {
    offers.split(|b| *b == b'\n').find_map(|line| {
        let (n, v) = match line.iter().position(|b| *b == b'=') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &line[line.len()..]),
        };
        (n == name.as_bytes()).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(max: usize, stream: &[u8], step: usize) -> Vec<String> {
        // Feeds `stream` `step` bytes at a time, as reads would.
        let mut d = Decoder::new(max);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for piece in stream.chunks(step) {
            buf.extend_from_slice(piece);
            loop {
                let (used, got) = d.decode(&buf);
                let text = match &got {
                    Decoded::Frame(f) => format!(
                        "{} {} {:?} cut={}",
                        f.txnr,
                        String::from_utf8_lossy(f.command),
                        String::from_utf8_lossy(f.data),
                        f.cut
                    ),
                    Decoded::Skipped => String::new(),
                    Decoded::NeedMore => break,
                    Decoded::Error(e) => format!("error: {e}"),
                };
                let error = matches!(got, Decoded::Error(_));
                buf.drain(..used);
                if !text.is_empty() {
                    out.push(text);
                }
                if error {
                    return out;
                }
            }
        }
        out
    }

    #[test]
    fn frames_as_librelp_sends_them_in_any_read_sizes() {
        let stream = b"1 open 86 relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n2 syslog 5 hello\n3 close 0\n4 close 0 \n";
        for step in [1, 2, 7, 100, 1000] {
            let got = all(1024, stream, step);
            assert_eq!(got.len(), 4, "step {step}: {got:?}");
            assert!(got[0].starts_with("1 open \"relp_version=0\\n"), "{got:?}");
            assert_eq!(got[1], "2 syslog \"hello\" cut=0");
            assert_eq!(got[2], "3 close \"\" cut=0");
            assert_eq!(got[3], "4 close \"\" cut=0");
        }
    }

    #[test]
    fn an_oversized_frame_is_cut_and_its_rest_skipped_whatever_the_reads() {
        let stream = b"7 syslog 10 0123456789\n8 syslog 2 ok\n";
        for step in [1, 3, 100] {
            assert_eq!(
                all(4, stream, step),
                ["7 syslog \"0123\" cut=6", "8 syslog \"ok\" cut=0"],
                "step {step}"
            );
        }
        // The rest skipped must still end with the trailer.
        assert_eq!(
            all(4, b"7 syslog 6 012345X8 syslog 2 ok\n", 100),
            [
                "7 syslog \"0123\" cut=2",
                "error: the frame's data is not followed by its LF trailer (a wrong data length)"
            ]
        );
    }

    #[test]
    fn broken_headers_are_errors() {
        for (stream, e) in [
            (&b"x syslog 1 a\n"[..], FrameError::BadTxnr),
            (b"1234567890 syslog 1 a\n", FrameError::BadTxnr),
            (b"1syslog 1 a\n", FrameError::BadTxnr),
            (b"1 sys-log 1 a\n", FrameError::BadCommand),
            (b"1  1 a\n", FrameError::BadCommand),
            (
                b"1 abcdefghijklmnopqrstuvwxyzabcdefg 1 a\n",
                FrameError::BadCommand,
            ),
            (b"1 syslog x a\n", FrameError::BadLength),
            (b"1 syslog 1234567890 a\n", FrameError::BadLength),
            (b"1 syslog 1a\n", FrameError::BadLength),
            (b"1 syslog 2 abc\n", FrameError::NoTrailer),
            (b"1 syslog 0 x\n", FrameError::NoTrailer),
        ] {
            let mut d = Decoder::new(100);
            assert_eq!(d.decode(stream).1, Decoded::Error(e), "{stream:?}");
        }
    }

    #[test]
    fn a_partial_header_needs_more_and_never_panics() {
        let whole = b"12 syslog 3 abc\n";
        for n in 0..whole.len() {
            let mut d = Decoder::new(100);
            assert_eq!(d.decode(&whole[..n]), (0, Decoded::NeedMore), "{n}");
        }
    }

    #[test]
    fn responses_and_offers_are_written_and_read() {
        let mut out = Vec::new();
        write_rsp(&mut out, 1, 200, "OK", "relp_version=0\ncommands=syslog");
        write_rsp(&mut out, 2, 200, "OK", "");
        write_frame(&mut out, 0, "serverclose", b"");
        assert_eq!(
            out,
            b"1 rsp 37 200 OK\nrelp_version=0\ncommands=syslog\n2 rsp 6 200 OK\n0 serverclose 0\n"
        );
        let mut d = Decoder::new(100);
        let (_, Decoded::Frame(f)) = d.decode(&out) else {
            panic!()
        };
        let (code, text, offers) = read_rsp(f.data).unwrap();
        assert_eq!((code, text), (200, &b"OK"[..]));
        assert_eq!(offer(offers, "commands"), Some(&b"syslog"[..]));
        assert_eq!(offer(offers, "relp_version"), Some(&b"0"[..]));
        assert_eq!(offer(offers, "nope"), None);
        assert_eq!(read_rsp(b"5x"), None);
        assert_eq!(next_txnr(MAX_TXNR), 1);
    }
}
