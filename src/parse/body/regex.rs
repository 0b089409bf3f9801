//! Bodies read by a regular expression (`parse = ["regex"]` with the input's `regex`): each
//! named capture group that matched becomes a string field, as liblognorm's and Vector's
//! `parse_regex` do for lines that have no key=value or JSON shape (`GET /x 200 12ms`). The
//! pattern is Rust `regex` syntax, checked when the configuration is; a body it does not match
//! fails (kept as it is, counted).

use regex::bytes::Regex;
use serde_json::Value;

use super::{insert, text, Limits, Outcome};

/// The fields `re`'s named groups capture in `body`.
pub fn regex(body: &[u8], re: &Regex, limits: &Limits) -> Outcome {
    let Some(caps) = re.captures(body) else {
        return Outcome::failed("the regex does not match");
    };
    let mut out = Outcome::default();
    for name in re.capture_names().flatten() {
        if let Some(m) = caps.name(name) {
            insert(
                &mut out,
                limits,
                name.to_string(),
                Value::String(text(m.as_bytes())),
            );
        }
    }
    if out.fields.is_empty() {
        out.error = Some("the regex matched, but no named group did".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::Kind;
    use super::*;

    #[test]
    fn named_groups_become_fields_and_a_miss_fails() {
        let re =
            Regex::new(r"^(?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3})(?: (?P<ms>\d+)ms)?")
                .unwrap();
        let o = regex(b"GET /cart 200", &re, &Limits::default());
        assert_eq!(o.kind(), Kind::Parsed);
        assert_eq!(o.fields["path"], "/cart");
        assert_eq!(o.fields["status"], "200");
        assert!(
            !o.fields.contains_key("ms"),
            "a group that did not take part is absent"
        );
        assert_eq!(
            regex(b"hello", &re, &Limits::default()).kind(),
            Kind::Failed
        );
    }
}
