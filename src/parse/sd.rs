//! RFC 5424 structured data (§6.3): validating the wire text while parsing, so that
//! [`Message::structured_data`](crate::message::Message) can keep it as one borrowed slice,
//! and decoding that slice into elements and parameters on demand, for the formats that show
//! them. Validation allocates nothing; only [`elements`] builds values.
//!
//! Accepted beyond the strict grammar, because real senders do it: spaces after `=`
//! (`name= "value"`) and unquoted values without spaces (`[foo bar=baz]`, syslog-ng). Refused:
//! empty or malformed elements (`[]`, `[=]`, `[id x]`), an unescaped `"` or `]` inside a value,
//! an unterminated element, and an SD-ID used twice (§6.3.2).

use std::borrow::Cow;

/// One SD-ELEMENT: its SD-ID and its parameters in wire order, values decoded
/// (`\"` → `"`, `\\` → `\`, `\]` → `]`; any other backslash kept as is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdElement<'a> {
    /// The SD-ID, such as `exampleSDID@32473`.
    pub id: &'a [u8],
    /// `(PARAM-NAME, decoded PARAM-VALUE)` pairs.
    pub params: Vec<(&'a [u8], Cow<'a, [u8]>)>,
}

/// SD-NAME characters: printable US-ASCII except `=`, SP, `]` and `"`.
#[inline]
fn is_name_byte(b: u8) -> bool {
    (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"')
}

/// Index after the SD-NAME starting at `i`, or `None` when it is empty.
#[inline]
fn name_end(s: &[u8], mut i: usize) -> Option<usize> {
    let start = i;
    while i < s.len() && is_name_byte(s[i]) {
        i += 1;
    }
    (i > start).then_some(i)
}

/// A parameter value as it appears on the wire.
struct RawValue<'a> {
    /// The bytes between the quotes (or the unquoted word), escapes not yet decoded.
    text: &'a [u8],
    /// Whether it was quoted (only quoted values have escapes).
    quoted: bool,
}

/// Reads the PARAM-VALUE starting at `i` (just after `=` and any spaces). Returns it and the
/// index after it.
fn value(s: &[u8], i: usize) -> Option<(RawValue<'_>, usize)> {
    if s.get(i) == Some(&b'"') {
        let mut j = i + 1;
        loop {
            match *s.get(j)? {
                b'"' => break,
                b'\\' => j += 2,
                b']' => return None, // must be escaped
                _ => j += 1,
            }
        }
        Some((
            RawValue {
                text: &s[i + 1..j],
                quoted: true,
            },
            j + 1,
        ))
    } else {
        let mut j = i;
        while j < s.len() && !matches!(s[j], b' ' | b']' | b'"') {
            j += 1;
        }
        (j > i).then(|| {
            (
                RawValue {
                    text: &s[i..j],
                    quoted: false,
                },
                j,
            )
        })
    }
}

/// What [`walk`] found.
enum Event<'a> {
    /// The start of an SD-ELEMENT, with its SD-ID.
    Element(&'a [u8]),
    /// A parameter of the latest element.
    Param(&'a [u8], RawValue<'a>),
}

/// Walks the SD-ELEMENTs at the start of `s`, reporting each element and parameter to `on`.
/// Returns the length of the structured data, or `None` if it is not valid.
fn walk<'a>(s: &'a [u8], mut on: impl FnMut(Event<'a>)) -> Option<usize> {
    let mut i = 0;
    if s.first() != Some(&b'[') {
        return None;
    }
    while s.get(i) == Some(&b'[') {
        let id_end = name_end(s, i + 1)?;
        on(Event::Element(&s[i + 1..id_end]));
        i = id_end;
        loop {
            match *s.get(i)? {
                b']' => {
                    i += 1;
                    break;
                }
                b' ' => {
                    while s.get(i) == Some(&b' ') {
                        i += 1;
                    }
                    let n_end = name_end(s, i)?;
                    if s.get(n_end) != Some(&b'=') {
                        return None;
                    }
                    let mut v = n_end + 1;
                    while s.get(v) == Some(&b' ') {
                        v += 1;
                    }
                    let (raw, after) = value(s, v)?;
                    on(Event::Param(&s[i..n_end], raw));
                    i = after;
                    if !matches!(s.get(i), Some(b' ' | b']')) {
                        return None;
                    }
                }
                _ => return None,
            }
        }
    }
    Some(i)
}

/// Validates the structured data at the start of `s`: one or more SD-ELEMENTs with no space
/// between them. Returns its length, or `None` when it is not valid structured data (the
/// caller then keeps that text in MSG). Does not allocate.
pub(crate) fn validate(s: &[u8]) -> Option<usize> {
    // SD-IDs seen so far, for the duplicate check; beyond 16 elements the check is skipped.
    let mut ids: [&[u8]; 16] = [&[]; 16];
    let mut count = 0;
    let mut duplicate = false;
    let len = walk(s, |event| {
        if let Event::Element(id) = event {
            duplicate |= ids[..count.min(16)].contains(&id);
            if count < 16 {
                ids[count] = id;
            }
            count += 1;
        }
    })?;
    (!duplicate).then_some(len)
}

/// Decodes `\"`, `\\` and `\]`; a backslash before anything else is kept (RFC 5424 §6.3.3).
fn decode(raw: RawValue<'_>) -> Cow<'_, [u8]> {
    if !raw.quoted || !raw.text.contains(&b'\\') {
        return Cow::Borrowed(raw.text);
    }
    let mut out = Vec::with_capacity(raw.text.len());
    let mut i = 0;
    while i < raw.text.len() {
        let b = raw.text[i];
        match raw.text.get(i + 1) {
            Some(&next @ (b'"' | b'\\' | b']')) if b == b'\\' => {
                out.push(next);
                i += 2;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// Decodes structured data that the parser has validated (the text of
/// [`Message::structured_data`](crate::message::Message)). Text that does not validate gives
/// the elements read before the error.
pub fn elements(raw: &[u8]) -> Vec<SdElement<'_>> {
    let mut out: Vec<SdElement<'_>> = Vec::new();
    let _ = walk(raw, |event| match event {
        Event::Element(id) => out.push(SdElement {
            id,
            params: Vec::new(),
        }),
        Event::Param(name, value) => {
            if let Some(element) = out.last_mut() {
                element.params.push((name, decode(value)));
            }
        }
    });
    out
}

/// The decoded value of parameter `name` of element `id` (the first, when repeated), found
/// without allocating unless the value has escapes.
pub fn param<'a>(raw: &'a [u8], id: &[u8], name: &[u8]) -> Option<Cow<'a, [u8]>> {
    let mut in_id = false;
    let mut found = None;
    let _ = walk(raw, |event| match event {
        Event::Element(e) => in_id = e == id,
        Event::Param(n, value) => {
            if in_id && n == name && found.is_none() {
                found = Some(decode(value));
            }
        }
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_param_is_found_by_element_and_name_and_decoded() {
        let raw = br#"[origin ip="10.0.0.1"][meta seq="1" note="a \"q\""][origin ip="x"]"#;
        assert_eq!(
            param(raw, b"origin", b"ip").as_deref(),
            Some(&b"10.0.0.1"[..])
        );
        assert_eq!(
            param(raw, b"meta", b"note").as_deref(),
            Some(&br#"a "q""#[..])
        );
        assert_eq!(param(raw, b"meta", b"ip"), None);
        assert_eq!(param(raw, b"nope", b"ip"), None);
    }

    fn ok(s: &str) -> usize {
        validate(s.as_bytes()).unwrap_or_else(|| panic!("should validate: {s}"))
    }

    #[test]
    fn validates() {
        assert_eq!(ok(r#"[a@1 x="1" y="two words"][b] msg"#), 28);
        assert_eq!(ok("[id]"), 4);
        assert_eq!(ok(r#"[id k=""]"#), 9);
        assert_eq!(ok(r#"[id k="\]\"\\"]"#), 15);
        assert_eq!(ok(r#"[id k= "v"]"#), 11);
        assert_eq!(ok("[id k=v]"), 8);
        assert_eq!(ok(r#"[id k="\n"]"#), 11);
    }

    #[test]
    fn refuses() {
        for bad in [
            "",
            "-",
            "[]",
            "[=]",
            "[\"]",
            "[ id]",
            "[id x]",
            "[id x=]",
            r#"[id x="]"]"#,
            r#"[id x="""]"#,
            r#"[id x="\"]"#,
            "[id k=v message",
            "[id][id]",
            r#"[d e="1"][x][d c="2"]"#,
            "[id k=\"v\"x]",
        ] {
            assert_eq!(validate(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn decodes() {
        let raw = br#"[a@1 x="1" esc="\]\"\\\n"][b][c k=v]"#;
        let els = elements(raw);
        assert_eq!(els.len(), 3);
        assert_eq!(els[0].id, b"a@1");
        assert_eq!(els[0].params[0], (&b"x"[..], Cow::Borrowed(&b"1"[..])));
        assert_eq!(&*els[0].params[1].1, br#"]"\\n"#);
        assert!(els[1].params.is_empty());
        assert_eq!(&*els[2].params[0].1, b"v");
    }
}
