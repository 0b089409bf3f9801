//! The kernel log record format of `/dev/kmsg` (Documentation/ABI/testing/dev-kmsg): one
//! record per read, `PRI,SEQ,USEC,FLAGS[,…];TEXT\n` followed by dictionary lines
//! ` KEY=value\n` that each begin with a space.
//!
//! This module owns the byte format and its mapping onto a [`Message`]: [`parse_record`]
//! splits one record, [`KmsgRecord::message`] builds the message from it. It does no I/O and
//! reads no clock: the boot time comes in as a number, so everything here is testable on
//! captured samples. It never panics, whatever the bytes.
//!
//! The kernel has already escaped the text: non-printable bytes (a newline inside a message,
//! a tab) arrive as `\xNN`, so the text is one line and is passed on as it is.

use chrono::{DateTime, FixedOffset};

use crate::message::{Facility, Flags, Message, Severity, Timestamp, TimestampKind};

/// The largest PRI the kernel writes: facility up to 127 (`LOG_FACMASK` is `0x3f8`), level
/// up to 7.
const MAX_PRI: u64 = 1023;

/// The app name of the kernel's own records.
pub const KERNEL_APPNAME: &[u8] = b"kernel";

/// How a record relates to its neighbours (the FLAGS field). Kernels since 5.10 always write
/// `-`: they join the fragments of a line before storing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Continuation {
    /// `-`: a whole record (also any flag this parser does not know).
    Whole,
    /// `c`: the first fragment of a line that later records continue.
    Begins,
    /// `+`: a fragment continuing the previous record.
    Continues,
}

/// One record as read from `/dev/kmsg`, every field borrowed from the read buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KmsgRecord<'a> {
    /// `facility * 8 + level`. The kernel's own records have facility 0 (kern); records that
    /// userspace wrote to `/dev/kmsg` carry the facility it gave (user when it gave none).
    pub pri: u16,
    /// The record's sequence number: one more than the previous record's, unless records
    /// were overwritten in between.
    pub seq: u64,
    /// Microseconds since boot (`CLOCK_MONOTONIC` at the time of the record, as the kernel
    /// writes it).
    pub usec: u64,
    /// The continuation flag.
    pub cont: Continuation,
    /// The text, without the line end; escaped by the kernel.
    pub text: &'a [u8],
    /// The dictionary lines (` SUBSYSTEM=pci\n DEVICE=+pci:0000:00:01.0\n`), as read;
    /// decode them with [`KmsgRecord::dictionary`].
    pub dict: &'a [u8],
}

/// Why a record could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KmsgError {
    /// No `;` ends the header.
    #[error("kmsg record without `;` after its header")]
    NoHeaderEnd,
    /// The header has fewer than the four fields `pri,seq,usec,flags`.
    #[error("kmsg record header has fewer than 4 fields")]
    MissingField,
    /// A numeric header field is not a number (or is out of range).
    #[error("kmsg record header field `{0}` is not a valid number")]
    BadNumber(&'static str),
}

/// Splits one record. Fails only on a header that is not `pri,seq,usec,flags[,…];`; extra
/// header fields (`caller=T42` on kernels built with `CONFIG_PRINTK_CALLER`) are ignored.
pub fn parse_record(record: &[u8]) -> Result<KmsgRecord<'_>, KmsgError> {
    let semi = memchr::memchr(b';', record).ok_or(KmsgError::NoHeaderEnd)?;
    let mut header = record[..semi].split(|&b| b == b',');
    let mut next = || header.next().ok_or(KmsgError::MissingField);
    let pri = number(next()?).filter(|&p| p <= MAX_PRI);
    let pri = pri.ok_or(KmsgError::BadNumber("pri"))? as u16;
    let seq = number(next()?).ok_or(KmsgError::BadNumber("seq"))?;
    let usec = number(next()?).ok_or(KmsgError::BadNumber("usec"))?;
    let cont = match next()?.first() {
        Some(b'c') => Continuation::Begins,
        Some(b'+') => Continuation::Continues,
        _ => Continuation::Whole,
    };
    let body = &record[semi + 1..];
    let (text, dict) = match memchr::memchr(b'\n', body) {
        Some(nl) => (&body[..nl], &body[nl + 1..]),
        None => (body, &body[body.len()..]),
    };
    Ok(KmsgRecord {
        pri,
        seq,
        usec,
        cont,
        text,
        dict,
    })
}

/// A decimal number of at most 20 digits, without sign or spaces.
fn number(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

impl<'a> KmsgRecord<'a> {
    /// The facility: kern for the kernel's records; a userspace writer's own otherwise, or
    /// `user` when it named one beyond the 24 syslog knows.
    pub fn facility(&self) -> Facility {
        Facility::from_code((self.pri >> 3) as u8).unwrap_or(Facility::USER)
    }

    /// The severity (the kernel's log level).
    pub fn severity(&self) -> Severity {
        Severity::from_code((self.pri & 7) as u8).unwrap_or(Severity::NOTICE)
    }

    /// The dictionary as `(KEY, value)` pairs, in order; lines without `=` are skipped.
    pub fn dictionary(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        self.dict.split(|&b| b == b'\n').filter_map(|line| {
            let line = line.strip_prefix(b" ").unwrap_or(line);
            let eq = memchr::memchr(b'=', line)?;
            (eq > 0).then(|| (&line[..eq], &line[eq + 1..]))
        })
    }

    /// Copies the first `out.len()` dictionary pairs into `out`; returns how many there were.
    /// Lets a caller keep the pairs in a buffer of its own, without allocating.
    pub fn fill_dictionary(&self, out: &mut [(&'a [u8], &'a [u8])]) -> usize {
        let mut n = 0;
        for (slot, pair) in out.iter_mut().zip(self.dictionary()) {
            *slot = pair;
            n += 1;
        }
        n
    }

    /// The message for this record. `boot_us` is the wall-clock time of boot in microseconds
    /// since the epoch (`CLOCK_REALTIME − CLOCK_BOOTTIME`); the timestamp is boot plus the
    /// record's `usec`, in UTC with 6 fraction digits. The kernel's own records have app
    /// name `kernel`; a userspace writer's record (facility other than kern) has the tag it
    /// wrote (`name[pid]: text` or `name: text`), as journald reads them, and no app name
    /// without one. `fields` are the dictionary pairs to attach (see
    /// [`fill_dictionary`](Self::fill_dictionary)).
    pub fn message(&self, boot_us: i64, fields: &'a [(&'a [u8], &'a [u8])]) -> Message<'a> {
        let facility = self.facility();
        let (appname, procid, msg) = if facility == Facility::KERN {
            (Some(KERNEL_APPNAME), None, self.text)
        } else {
            match user_tag(self.text) {
                Some(t) => (Some(t.name), t.pid, t.rest),
                None => (None, None, self.text),
            }
        };
        Message {
            facility,
            severity: self.severity(),
            version: None,
            timestamp: timestamp(boot_us, self.usec),
            hostname: None,
            appname,
            procid,
            msgid: None,
            structured_data: None,
            msg,
            flags: Flags::empty(),
            fields,
            parsed: None,
        }
    }
}

/// The time of a record: boot plus `usec`, as an RFC 3339 UTC timestamp with microseconds;
/// `None` when it falls outside the dates chrono can show.
pub fn timestamp(boot_us: i64, usec: u64) -> Option<Timestamp> {
    let micros = boot_us.checked_add(i64::try_from(usec).ok()?)?;
    let t = DateTime::from_timestamp_micros(micros)?;
    Some(Timestamp {
        local: t.naive_utc(),
        offset: FixedOffset::east_opt(0),
        kind: TimestampKind::Rfc3339,
        frac_digits: 6,
    })
}

/// The message for a record [`parse_record`] refused: kern.notice, app name `kernel`, the
/// whole record (without a trailing newline) as text, flagged `MALFORMED`.
pub fn malformed_message(record: &[u8]) -> Message<'_> {
    let text = record.strip_suffix(b"\n").unwrap_or(record);
    Message {
        facility: Facility::KERN,
        severity: Severity::NOTICE,
        version: None,
        timestamp: None,
        hostname: None,
        appname: Some(KERNEL_APPNAME),
        procid: None,
        msgid: None,
        structured_data: None,
        msg: text,
        flags: Flags::MALFORMED,
        fields: &[],
        parsed: None,
    }
}

/// A userspace writer's tag and the text after it.
struct UserTag<'a> {
    name: &'a [u8],
    pid: Option<&'a [u8]>,
    /// The text after `: `.
    rest: &'a [u8],
}

/// A userspace writer's tag at the start of `text`: `name[pid]: rest` or `name: rest`, the
/// name without spaces.
fn user_tag(text: &[u8]) -> Option<UserTag<'_>> {
    let end = text.iter().position(|&b| matches!(b, b' ' | b':' | b'['))?;
    if end == 0 {
        return None;
    }
    let name = &text[..end];
    let (pid, after) = if text[end] == b'[' {
        let close = end + 1 + text[end + 1..].iter().position(|&b| b == b']')?;
        let pid = &text[end + 1..close];
        if pid.is_empty() || !pid.iter().all(u8::is_ascii_digit) {
            return None;
        }
        (Some(pid), close + 1)
    } else {
        (None, end)
    };
    let rest = text[after..].strip_prefix(b":")?;
    Some(UserTag {
        name,
        pid,
        rest: rest.strip_prefix(b" ").unwrap_or(rest),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records read from `/dev/kmsg` on the development machine (kernel 6.18), byte for byte.
    const BOOT_LINUX: &[u8] = b"5,0,0,-;Linux version 6.18.44-fc-v657 (builder@sandboxing) (gcc (GCC) 15.3.0, GNU ld (GNU Binutils) 2.46) #1 SMP PREEMPT_DYNAMIC @0\n";
    const TAB_ESCAPED: &[u8] =
        b"6,89,200684,-;rcu: \\x09RCU restricting CPUs from NR_CPUS=256 to nr_cpu_ids=2.\n";
    const WITH_DICT: &[u8] = b"6,191,254999,-;pci_bus 0000:00: root bus resource [mem 0xeec00000-0xeecfffff]\n SUBSYSTEM=pci_bus\n DEVICE=+pci_bus:0000:00\n";
    const DEBUG_LEVEL: &[u8] =
        b"7,17,329,-;e820: update [mem 0x00000000-0x00000fff] usable ==> reserved\n";

    #[test]
    fn real_record() {
        let r = parse_record(BOOT_LINUX).unwrap();
        assert_eq!((r.pri, r.seq, r.usec), (5, 0, 0));
        assert_eq!(r.cont, Continuation::Whole);
        assert!(r.text.starts_with(b"Linux version 6.18.44"));
        assert!(r.text.ends_with(b"@0"));
        assert!(r.dict.is_empty());
        assert_eq!(r.dictionary().count(), 0);
        assert_eq!(r.facility(), Facility::KERN);
        assert_eq!(r.severity(), Severity::NOTICE);

        let r = parse_record(DEBUG_LEVEL).unwrap();
        assert_eq!((r.seq, r.usec), (17, 329));
        assert_eq!(r.severity(), Severity::DEBUG);
    }

    #[test]
    fn dictionary_lines_stay_out_of_the_text() {
        let r = parse_record(WITH_DICT).unwrap();
        assert_eq!(
            r.text,
            b"pci_bus 0000:00: root bus resource [mem 0xeec00000-0xeecfffff]"
        );
        let d: Vec<_> = r.dictionary().collect();
        assert_eq!(
            d,
            [
                (&b"SUBSYSTEM"[..], &b"pci_bus"[..]),
                (&b"DEVICE"[..], &b"+pci_bus:0000:00"[..])
            ]
        );
        let mut store = [(&b""[..], &b""[..]); 1];
        assert_eq!(r.fill_dictionary(&mut store), 1);
        assert_eq!(store[0].0, b"SUBSYSTEM");
        let m = r.message(0, &store);
        assert_eq!(m.field(b"SUBSYSTEM"), Some(&b"pci_bus"[..]));
        assert_eq!(m.msg, r.text);
    }

    #[test]
    fn escaped_text_is_kept_as_the_kernel_wrote_it() {
        let r = parse_record(TAB_ESCAPED).unwrap();
        assert_eq!(
            r.text,
            b"rcu: \\x09RCU restricting CPUs from NR_CPUS=256 to nr_cpu_ids=2."
        );
        // A newline inside a message arrives as `\x0a`: still one line of text.
        let r = parse_record(b"4,12,34,-;first\\x0asecond\n").unwrap();
        assert_eq!(r.text, b"first\\x0asecond");
        assert!(r.dict.is_empty());
    }

    #[test]
    fn kernel_message() {
        let r = parse_record(WITH_DICT).unwrap();
        // 2026-11-21T00:00:00Z in microseconds.
        let boot = DateTime::parse_from_rfc3339("2026-11-21T00:00:00Z")
            .unwrap()
            .timestamp_micros();
        let m = r.message(boot, &[]);
        assert_eq!(m.facility, Facility::KERN);
        assert_eq!(m.severity, Severity::INFO);
        assert_eq!(m.appname, Some(KERNEL_APPNAME));
        assert_eq!(m.hostname, None);
        assert_eq!(m.procid, None);
        assert!(m.flags.is_empty());
        let ts = m.timestamp.unwrap();
        assert_eq!(ts.kind, TimestampKind::Rfc3339);
        assert_eq!(ts.offset, FixedOffset::east_opt(0));
        assert_eq!(ts.frac_digits, 6);
        assert_eq!(ts.local.to_string(), "2026-11-21 00:00:00.254999");
    }

    #[test]
    fn userspace_record_keeps_its_facility_and_tag() {
        // `echo '<5>logwell-test: MARKER' > /dev/kmsg` stores pri 13: the kernel makes a
        // facility-less write `user`.
        let r = parse_record(b"13,340,5575441,-;logwell-test: MARKER\n").unwrap();
        let m = r.message(0, &[]);
        assert_eq!(m.facility, Facility::USER);
        assert_eq!(m.severity, Severity::NOTICE);
        assert_eq!(m.appname, Some(&b"logwell-test"[..]));
        assert_eq!(m.msg, b"MARKER");
        // systemd writes to kmsg before journald runs: daemon.info with a pid.
        let r = parse_record(b"30,341,1200000,-;systemd[1]: Started Journal Service.\n").unwrap();
        let m = r.message(0, &[]);
        assert_eq!(m.facility.name(), "daemon");
        assert_eq!(m.severity, Severity::INFO);
        assert_eq!(
            (m.appname, m.procid),
            (Some(&b"systemd"[..]), Some(&b"1"[..]))
        );
        assert_eq!(m.msg, b"Started Journal Service.");
        // No tag: no app name, the whole text.
        let m = parse_record(b"14,3,4,-;just words\n")
            .unwrap()
            .message(0, &[]);
        assert_eq!((m.appname, m.msg), (None, &b"just words"[..]));
        // local7 and a facility beyond syslog's 24.
        assert_eq!(
            parse_record(b"191,1,1,-;x\n").unwrap().facility().name(),
            "local7"
        );
        assert_eq!(
            parse_record(b"1023,1,1,-;x\n").unwrap().facility(),
            Facility::USER
        );
    }

    #[test]
    fn continuation_flags_and_caller_field() {
        let r = parse_record(b"6,100,200,c;partial line\n").unwrap();
        assert_eq!(r.cont, Continuation::Begins);
        let r = parse_record(b"6,101,201,+; and the rest\n").unwrap();
        assert_eq!(r.cont, Continuation::Continues);
        assert_eq!(r.text, b" and the rest");
        let r = parse_record(b"6,102,202,-,caller=T1;with caller id\n").unwrap();
        assert_eq!(
            (r.seq, r.cont, r.text),
            (102, Continuation::Whole, &b"with caller id"[..])
        );
        // No newline at the end, empty text.
        let r = parse_record(b"6,103,203,-;").unwrap();
        assert_eq!(r.text, b"");
    }

    #[test]
    fn malformed_headers() {
        assert_eq!(parse_record(b""), Err(KmsgError::NoHeaderEnd));
        assert_eq!(
            parse_record(b"no header here\n"),
            Err(KmsgError::NoHeaderEnd)
        );
        assert_eq!(parse_record(b"6,1,2;short\n"), Err(KmsgError::MissingField));
        assert_eq!(
            parse_record(b"x,1,2,-;t\n"),
            Err(KmsgError::BadNumber("pri"))
        );
        assert_eq!(
            parse_record(b"1024,1,2,-;t\n"),
            Err(KmsgError::BadNumber("pri"))
        );
        assert_eq!(
            parse_record(b"6,-1,2,-;t\n"),
            Err(KmsgError::BadNumber("seq"))
        );
        assert_eq!(
            parse_record(b"6,1,99999999999999999999,-;t\n"),
            Err(KmsgError::BadNumber("usec"))
        );
        assert_eq!(
            parse_record(b"6,1, 2,-;t\n"),
            Err(KmsgError::BadNumber("usec"))
        );
        let m = malformed_message(b"garbage\n");
        assert_eq!(m.msg, b"garbage");
        assert!(m.flags.contains(Flags::MALFORMED));
        // A timestamp out of chrono's range is dropped, not a panic.
        assert_eq!(timestamp(i64::MAX, 1), None);
        assert_eq!(timestamp(0, u64::MAX), None);
    }

    #[test]
    fn no_panic_on_any_prefix_or_byte() {
        for sample in [BOOT_LINUX, TAB_ESCAPED, WITH_DICT] {
            for end in 0..=sample.len() {
                let _ = parse_record(&sample[..end]).map(|r| r.message(i64::MAX, &[]));
            }
            for i in 0..sample.len() {
                let mut s = sample.to_vec();
                for b in [0u8, b';', b',', b'\n', b'[', b':', 0xff] {
                    s[i] = b;
                    let _ = parse_record(&s).map(|r| (r.dictionary().count(), r.message(0, &[])));
                }
            }
        }
    }
}
