//! The PRI part of a syslog message (`<PRI>`, RFC 5424 §6.2.1, RFC 3164 §4.1.1), read strictly:
//! one to three digits, no leading zero, at most 191. This module only reads the PRI; what to
//! do when it is missing or unusable (RFC 3164 §4.3.3) is decided by the caller.

/// A valid PRI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pri {
    /// Facility code, 0..=23.
    pub facility: u8,
    /// Severity code, 0..=7.
    pub severity: u8,
    /// How many bytes `<PRI>` took, brackets included.
    pub len: usize,
}

/// Reads the PRI at the start of `s`. `None` for anything but `<` 1–3 digits `>` with a value
/// of at most 191 and no leading zero (`<0>` is fine, `<013>` is not).
pub(crate) fn parse(s: &[u8]) -> Option<Pri> {
    if s.first() != Some(&b'<') {
        return None;
    }
    let mut value: u16 = 0;
    let mut i = 1;
    // Read at most four digits: a fourth one already makes the PRI invalid.
    while i < s.len() && i <= 4 && s[i].is_ascii_digit() {
        value = value * 10 + u16::from(s[i] - b'0');
        i += 1;
    }
    let digits = i - 1;
    if digits == 0 || digits > 3 || s.get(i) != Some(&b'>') {
        return None;
    }
    if digits > 1 && s[1] == b'0' {
        return None;
    }
    if value > 191 {
        return None;
    }
    Some(Pri {
        facility: (value >> 3) as u8,
        severity: (value & 7) as u8,
        len: i + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_pris() {
        assert_eq!(
            parse(b"<0>x"),
            Some(Pri {
                facility: 0,
                severity: 0,
                len: 3
            })
        );
        assert_eq!(
            parse(b"<13>"),
            Some(Pri {
                facility: 1,
                severity: 5,
                len: 4
            })
        );
        assert_eq!(
            parse(b"<191>a"),
            Some(Pri {
                facility: 23,
                severity: 7,
                len: 5
            })
        );
    }

    #[test]
    fn bad_pris() {
        for bad in [
            &b"<192>"[..],
            b"<999>",
            b"<1000>",
            b"<-1>",
            b"<013>",
            b"<00>",
            b"<>",
            b"<",
            b"<34",
            b"<3a>",
            b"34>",
            b"",
            b"<12345678>",
        ] {
            assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
