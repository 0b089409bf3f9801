//! logfmt bodies, read by the kr/logfmt grammar as go-logfmt (its reference implementation)
//! reads them: pairs separated by bytes up to and including SP; a key is a run of bytes above
//! SP other than `=` and `"`; then `=value`, `="quoted value"` (unescaped as a JSON string),
//! `=` (the empty string), or nothing (a bare key: `true`). Values are strings.
//!
//! A syntax error (`=` where a key should start, `"` or `=` inside an unquoted value, an
//! unterminated quote, a bad escape) stops the parse: the pairs before it are kept, as
//! go-logfmt delivers them before reporting the error ([`super::Kind::Partial`]).

use serde_json::Value;

use super::{insert, text, Limits, Outcome};

/// The fields of a logfmt body.
pub fn logfmt(body: &[u8], limits: &Limits) -> Outcome {
    let mut out = Outcome::default();
    let mut i = 0;
    let blank = |b: u8| b <= b' ';
    let stop = |at: usize, what: &str, out: &mut Outcome| {
        out.error = Some(format!("{what} at byte {at}"));
    };
    loop {
        while i < body.len() && blank(body[i]) {
            i += 1;
        }
        if i == body.len() {
            break;
        }
        let key_start = i;
        while i < body.len() && !blank(body[i]) && body[i] != b'=' && body[i] != b'"' {
            i += 1;
        }
        if i == key_start {
            stop(i, &format!("unexpected `{}`", body[i] as char), &mut out);
            break;
        }
        let key = text(&body[key_start..i]);
        if i == body.len() || blank(body[i]) {
            insert(&mut out, limits, key, Value::Bool(true));
            continue;
        }
        if body[i] == b'"' {
            stop(i, "unexpected `\"` in a key", &mut out);
            break;
        }
        // `=`
        i += 1;
        if i == body.len() || blank(body[i]) {
            insert(&mut out, limits, key, Value::String(String::new()));
            continue;
        }
        if body[i] == b'"' {
            let Some(end) = closing_quote(body, i + 1) else {
                stop(i, "unterminated quoted value", &mut out);
                break;
            };
            match serde_json::from_slice::<String>(&body[i..=end]) {
                Ok(v) => insert(&mut out, limits, key, Value::String(v)),
                Err(e) => {
                    stop(i, &format!("bad quoted value ({e})"), &mut out);
                    break;
                }
            }
            i = end + 1;
            if i < body.len() && !blank(body[i]) {
                stop(i, "unexpected text after a quoted value", &mut out);
                break;
            }
            continue;
        }
        let value_start = i;
        while i < body.len() && !blank(body[i]) {
            if body[i] == b'=' || body[i] == b'"' {
                break;
            }
            i += 1;
        }
        if i < body.len() && !blank(body[i]) {
            stop(
                i,
                &format!("unexpected `{}` in a value", body[i] as char),
                &mut out,
            );
            break;
        }
        insert(
            &mut out,
            limits,
            key,
            Value::String(text(&body[value_start..i])),
        );
    }
    if out.fields.is_empty() && out.error.is_none() {
        out.error = Some("no pairs".into());
    }
    out
}

/// The index of the `"` that closes a quoted value whose content starts at `from`.
fn closing_quote(body: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < body.len() {
        match body[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::Kind;
    use super::*;

    fn parse(body: &str) -> Outcome {
        logfmt(body.as_bytes(), &Limits::default())
    }

    #[test]
    fn pairs_quoted_values_empty_values_and_bare_keys() {
        let o = parse(r#"at=info msg="a \"b\"\tc" k= bare x=1"#);
        assert_eq!(o.kind(), Kind::Parsed);
        assert_eq!(o.fields["at"], "info");
        assert_eq!(o.fields["msg"], "a \"b\"\tc");
        assert_eq!(o.fields["k"], "");
        assert_eq!(o.fields["bare"], true);
        assert_eq!(o.fields["x"], "1", "values are strings");
    }

    #[test]
    fn an_error_keeps_the_pairs_before_it() {
        let o = parse("a=1 k=b=ar c=2");
        assert_eq!(o.kind(), Kind::Partial);
        assert_eq!(o.fields.len(), 1);
        assert_eq!(parse(r#"a="1"#).kind(), Kind::Failed);
        assert_eq!(parse("   ").kind(), Kind::Failed);
    }
}
