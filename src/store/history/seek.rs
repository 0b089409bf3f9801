//! Finding where to start in a generation: the last N lines (scanning a plain file
//! backwards in blocks, a compressed one forwards), the start of the line ending at a
//! position, and the first line at or after a time.

use super::*;

/// How much of a line [`Start::Since`] reads to find its timestamp.
pub(super) const SINCE_LINE_MAX: usize = 64 * 1024;

/// Up to this many lines, the tail of a compressed generation is found in one pass keeping
/// their offsets (8 bytes each); for more, one pass counts its lines and a second finds
/// where the last N start, so a huge N costs no memory.
pub(super) const TAIL_OFFSETS_MAX: u64 = 64 * 1024;

/// How many complete lines a generation contributes to a tail, and where.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Tail {
    /// Lines found, at most the number asked for.
    pub(super) lines: u64,
    /// Where the first of them starts.
    pub(super) start: u64,
    /// Just after the last of them.
    pub(super) end: u64,
}

/// The last `n` complete lines of a generation (fewer if it has fewer). With `n == 0`,
/// `start == end`, the end of its complete lines.
pub(super) fn tail(e: &Listed, n: u64) -> io::Result<Tail> {
    match e.compression {
        Compression::None => tail_plain(&open_regular(&e.path)?, e.live, n),
        _ => tail_stream(|| open_at(&e.path, e.compression, 0), n),
    }
}

/// Finds `\n`s from the end of a file towards its start, reading it in blocks.
pub(super) struct Backwards<'f> {
    pub(super) file: &'f File,
    pub(super) block_start: u64,
    pub(super) buf: Vec<u8>,
    /// The search goes on in `buf[..upto]`.
    pub(super) upto: usize,
}

impl Backwards<'_> {
    pub(super) fn next_newline(&mut self) -> io::Result<Option<u64>> {
        use std::os::unix::fs::FileExt;
        loop {
            if let Some(i) = memchr::memrchr(b'\n', &self.buf[..self.upto]) {
                self.upto = i;
                return Ok(Some(self.block_start + i as u64));
            }
            if self.block_start == 0 {
                return Ok(None);
            }
            let size = (BLOCK as u64).min(self.block_start);
            self.block_start -= size;
            self.buf.resize(size as usize, 0);
            self.file.read_exact_at(&mut self.buf, self.block_start)?;
            self.upto = self.buf.len();
        }
    }
}

pub(super) fn tail_plain(file: &File, live: bool, n: u64) -> io::Result<Tail> {
    let len = file.metadata()?.len();
    let mut nl = Backwards {
        file,
        block_start: len,
        buf: Vec::new(),
        upto: 0,
    };
    let empty = Tail {
        lines: 0,
        start: 0,
        end: 0,
    };
    if len == 0 {
        return Ok(empty);
    }
    // `end` is just after the last line; `sep` the `\n` before it, if any.
    let (end, mut sep) = match nl.next_newline()? {
        Some(p) if p + 1 == len || live => (p + 1, nl.next_newline()?),
        None if live => return Ok(empty), // only a line being written
        other => (len, other),            // a rotated generation's last line without `\n`
    };
    if n == 0 {
        return Ok(Tail {
            lines: 0,
            start: end,
            end,
        });
    }
    let mut lines = 1;
    loop {
        match sep {
            Some(p) if lines == n => {
                return Ok(Tail {
                    lines,
                    start: p + 1,
                    end,
                })
            }
            Some(_) => {
                lines += 1;
                sep = nl.next_newline()?;
            }
            None => {
                return Ok(Tail {
                    lines,
                    start: 0,
                    end,
                })
            }
        }
    }
}

/// The tail of a compressed (hence closed) generation. Up to [`TAIL_OFFSETS_MAX`] lines: one
/// pass, keeping the start offsets of the last `n` lines. More: one pass counting the lines
/// and, when there are more than `n`, a second one to where the last `n` start; so memory
/// never grows with `n` or with the number of lines.
pub(super) fn tail_stream(
    open: impl Fn() -> io::Result<Box<dyn BufRead + Send>>,
    n: u64,
) -> io::Result<Tail> {
    if n == 0 {
        let end = line_starts(open()?, |_| {})?;
        return Ok(Tail {
            lines: 0,
            start: end,
            end,
        });
    }
    if n <= TAIL_OFFSETS_MAX {
        let mut starts: VecDeque<u64> = VecDeque::new();
        let end = line_starts(open()?, |at| {
            if starts.len() as u64 == n {
                starts.pop_front();
            }
            starts.push_back(at);
        })?;
        return Ok(Tail {
            lines: starts.len() as u64,
            start: starts.front().copied().unwrap_or(end),
            end,
        });
    }
    let mut total = 0u64;
    let end = line_starts(open()?, |_| total += 1)?;
    if total <= n {
        return Ok(Tail {
            lines: total,
            start: if total == 0 { end } else { 0 },
            end,
        });
    }
    // The first of the last `n` lines is line number `total - n` (from 0).
    let wanted = total - n;
    let (mut index, mut start) = (0u64, end);
    line_starts(open()?, |at| {
        if index == wanted {
            start = at;
        }
        index += 1;
    })?;
    Ok(Tail {
        lines: n,
        start,
        end,
    })
}

/// Calls `at` with the offset where each line of `reader` starts, in order (a last line
/// without `\n` included); returns the length of the content.
pub(super) fn line_starts(
    mut reader: Box<dyn BufRead + Send>,
    mut at: impl FnMut(u64),
) -> io::Result<u64> {
    let mut offset = 0u64;
    let mut at_line_start = true;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        if at_line_start {
            at(offset);
        }
        for i in memchr::memchr_iter(b'\n', chunk) {
            if i + 1 < chunk.len() {
                at(offset + i as u64 + 1);
            }
        }
        at_line_start = chunk.last() == Some(&b'\n');
        let len = chunk.len();
        offset += len as u64;
        reader.consume(len);
    }
    Ok(offset)
}

/// Where the line that ends at `end` starts: just after the `\n` before its last byte, or
/// the generation's start. (`end` is clamped to the generation's length.)
pub(super) fn line_start_before(e: &Listed, end: u64) -> io::Result<u64> {
    if end == 0 {
        return Ok(0);
    }
    match e.compression {
        Compression::None => {
            let file = open_regular(&e.path)?;
            let last = end.min(file.metadata()?.len()).saturating_sub(1);
            let mut nl = Backwards {
                file: &file,
                block_start: last,
                buf: Vec::new(),
                upto: 0,
            };
            Ok(nl.next_newline()?.map_or(0, |p| p + 1))
        }
        _ => {
            let mut reader = open_at(&e.path, e.compression, 0)?.take(end - 1);
            let (mut offset, mut start) = (0u64, 0u64);
            loop {
                let chunk = reader.fill_buf()?;
                if chunk.is_empty() {
                    return Ok(start);
                }
                if let Some(i) = memchr::memrchr(b'\n', chunk) {
                    start = offset + i as u64 + 1;
                }
                let len = chunk.len();
                offset += len as u64;
                reader.consume(len);
            }
        }
    }
}

/// The offset of the first complete line of `e` whose timestamp is at or after `since`.
pub(super) fn scan_since(e: &Listed, since: DateTime<Utc>) -> io::Result<Option<u64>> {
    let mut reader = open_at(&e.path, e.compression, 0)?;
    let written = DateTime::<Local>::from(e.modified).naive_local();
    let mut line = Vec::new();
    let mut offset = 0u64;
    loop {
        line.clear();
        // The timestamp is at the start: a long line is read through, not kept.
        let (len, complete) = read_capped(&mut reader, &mut line, &mut 0, SINCE_LINE_MAX)?;
        if len == 0 || (e.live && !complete) {
            return Ok(None);
        }
        if line_time(&line, written).is_some_and(|t| t >= since) {
            return Ok(Some(offset));
        }
        offset += len;
    }
}
