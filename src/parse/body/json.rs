//! JSON bodies: exactly one JSON object (RFC 8259), with JSON white space around it, as
//! rsyslog's `mmjsonparse`, Vector's `parse_json` and Fluent Bit agree. A top-level array,
//! string or number, two objects, or text after the object fail the body; so do the
//! extensions json-c accepts (single quotes, comments, trailing commas, `NaN`, leading
//! zeros), raw control characters in strings, and lone surrogates. Bytes that are not UTF-8
//! are replaced (U+FFFD). Numbers stay numbers:
//! integers exact through the `u64` range, beyond it the nearest `f64`.

use super::{insert, Limits, Outcome};

/// rsyslog's CEE cookie, which marks a JSON body in a syslog message (`@cee: {"a":1}`).
const COOKIE: &[u8] = b"@cee:";

/// A body that is a JSON object, or one after the `@cee:` cookie.
pub fn json(body: &[u8], limits: &Limits) -> Outcome {
    match after_cookie(body) {
        Some(rest) => object(rest, limits),
        None => object(body, limits),
    }
}

/// A body that is `@cee:` (white space before and after it allowed) and then a JSON object.
pub fn cee(body: &[u8], limits: &Limits) -> Outcome {
    match after_cookie(body) {
        Some(rest) => object(rest, limits),
        None => Outcome::failed("no @cee: cookie"),
    }
}

/// What follows the cookie, when the body starts with it (after white space, as rsyslog
/// allows).
fn after_cookie(body: &[u8]) -> Option<&[u8]> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    body[start..].strip_prefix(COOKIE)
}

fn object(text: &[u8], limits: &Limits) -> Outcome {
    // Bytes that are not UTF-8 become U+FFFD, as in every other text logwell keeps, so a
    // Latin-1 byte in a string does not cost the whole body (json-c and yyjson agree).
    let parsed = match std::str::from_utf8(text) {
        Ok(text) => serde_json::from_str::<super::Fields>(text),
        Err(_) => serde_json::from_str::<super::Fields>(&String::from_utf8_lossy(text)),
    };
    match parsed {
        Ok(map) => {
            let mut out = Outcome::default();
            for (k, v) in map {
                insert(&mut out, limits, k, v);
            }
            out
        }
        Err(e) => Outcome::failed(format!("not a JSON object: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Kind;
    use super::*;

    fn kind(parser: fn(&[u8], &Limits) -> Outcome, body: &str) -> Kind {
        parser(body.as_bytes(), &Limits::default()).kind()
    }

    #[test]
    fn an_object_parses_with_white_space_and_a_cookie_and_nothing_else_does() {
        let o = json(
            br#" {"a": 1, "b": {"c": [true, null]}, "a": 2} "#,
            &Limits::default(),
        );
        assert_eq!(o.kind(), Kind::Parsed);
        assert_eq!(o.fields["a"], 2, "the last of a repeated key");
        assert_eq!(o.fields["b"]["c"][0], true);
        assert_eq!(kind(json, r#"@cee: {"a":1}"#), Kind::Parsed);
        assert_eq!(kind(cee, r#"  @cee:{"a":1}"#), Kind::Parsed);
        for bad in [
            r#"{"a":1} x"#,
            "[1]",
            "42",
            "",
            r#"{"a":1}{"b":2}"#,
            "{'a':1}",
        ] {
            assert_eq!(kind(json, bad), Kind::Failed, "{bad}");
        }
        assert_eq!(
            kind(cee, r#"{"a":1}"#),
            Kind::Failed,
            "cee needs its cookie"
        );
    }

    #[test]
    fn integers_stay_exact_through_u64() {
        let o = json(
            br#"{"max": 18446744073709551615, "min": -9223372036854775808, "f": 3.0}"#,
            &Limits::default(),
        );
        assert_eq!(o.fields["max"].as_u64(), Some(u64::MAX));
        assert_eq!(o.fields["min"].as_i64(), Some(i64::MIN));
        assert!(o.fields["f"].is_f64());
    }
}
