//! `key=value` bodies, read as syslog-ng's `kv-parser()` reads them (it has the most kv cases
//! in any test suite, and Vector's `parse_key_value` and liblognorm agree on most):
//! - a key is a run of characters other than blanks, separators and quotes, with optional
//!   blanks before the key separator (`foo =bar`); blanks after it are skipped (`baz= qux`);
//! - a value may be quoted with any of the configured quote characters, `\` escaping the next
//!   character inside; an unclosed quote keeps the value as written (`k="a` gives `"a`);
//! - with a blank pair separator (the default, `" "`), a value runs until the next word that
//!   is a key, so stray words join the value before them (iptables' `ID=9434 DF` gives
//!   `"9434 DF"`) and words before the first pair are skipped; only a space separates, so a
//!   tab stays inside a value;
//! - with another pair separator (`;`, `,`), the body is split on it (outside quotes), each
//!   part trimmed, and a part without a key separator is skipped.
//!
//! Values are strings. A body without any pair, or whose only pair has an empty key, fails.

use serde_json::Value;

use super::{insert, text, Limits, Outcome};

/// The separators and quotes of a kv body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvOptions {
    /// Between pairs (default `" "`).
    pub pair_sep: String,
    /// Between a key and its value (default `"="`).
    pub kv_sep: String,
    /// The characters that may quote a value (default `"`).
    pub quotes: String,
}

impl Default for KvOptions {
    fn default() -> KvOptions {
        KvOptions {
            pair_sep: " ".into(),
            kv_sep: "=".into(),
            quotes: "\"".into(),
        }
    }
}

/// The fields of a kv body.
pub fn kv(body: &[u8], options: &KvOptions, limits: &Limits) -> Outcome {
    let scan = Scan {
        body,
        pair_sep: options.pair_sep.as_bytes(),
        kv_sep: options.kv_sep.as_bytes(),
        quotes: options.quotes.as_bytes(),
    };
    let mut out = Outcome::default();
    if scan.kv_sep.is_empty() || scan.pair_sep.is_empty() {
        return Outcome::failed("empty separator");
    }
    if scan.pair_sep.iter().all(|&b| b == b' ') {
        scan.blank_separated(&mut out, limits);
    } else {
        scan.split(&mut out, limits);
    }
    if out.fields.is_empty() {
        out.error = Some("no key=value pairs".into());
    }
    out
}

struct Scan<'a> {
    body: &'a [u8],
    pair_sep: &'a [u8],
    kv_sep: &'a [u8],
    quotes: &'a [u8],
}

impl Scan<'_> {
    fn at(&self, i: usize, what: &[u8]) -> bool {
        self.body[i..].starts_with(what)
    }

    fn key_byte(&self, i: usize) -> bool {
        let b = self.body[i];
        !b.is_ascii_whitespace()
            && !self.quotes.contains(&b)
            && !self.at(i, self.kv_sep)
            && !self.at(i, self.pair_sep)
    }

    /// A key starting at `i`: its end, and where its value starts (after the key separator
    /// and any spaces around it).
    fn key_at(&self, i: usize) -> Option<(usize, usize)> {
        let mut end = i;
        while end < self.body.len() && self.key_byte(end) {
            end += 1;
        }
        if end == i {
            return None;
        }
        let mut j = end;
        while j < self.body.len() && self.body[j] == b' ' {
            j += 1;
        }
        if j < self.body.len() && self.at(j, self.kv_sep) {
            Some((end, j + self.kv_sep.len()))
        } else {
            None
        }
    }

    /// The start of the next word at or after `from` that is a key (a word starts after a
    /// space, or at `from` itself when `from_is_word_start`).
    fn next_key(&self, from: usize, from_is_word_start: bool) -> Option<usize> {
        let mut i = from;
        let mut word_start = from_is_word_start;
        while i < self.body.len() {
            if self.body[i] == b' ' {
                word_start = true;
            } else {
                if word_start && self.key_at(i).is_some() {
                    return Some(i);
                }
                word_start = false;
            }
            i += 1;
        }
        None
    }

    /// The quoted value starting at `i` (a quote character): its unescaped text and the index
    /// after the closing quote, or `None` when it is not closed.
    fn quoted(&self, i: usize) -> Option<(String, usize)> {
        let q = self.body[i];
        let mut value = Vec::new();
        let mut j = i + 1;
        while j < self.body.len() {
            match self.body[j] {
                b'\\' if j + 1 < self.body.len() => {
                    value.push(self.body[j + 1]);
                    j += 2;
                }
                b if b == q => return Some((text(&value), j + 1)),
                b => {
                    value.push(b);
                    j += 1;
                }
            }
        }
        None
    }

    fn blank_separated(&self, out: &mut Outcome, limits: &Limits) {
        let mut next = self.next_key(0, true);
        while let Some(start) = next {
            let (key_end, value_start) = self.key_at(start).expect("next_key found a key");
            let key = text(&self.body[start..key_end]);
            let mut v = value_start;
            while v < self.body.len() && self.body[v] == b' ' {
                v += 1;
            }
            if v < self.body.len() && self.quotes.contains(&self.body[v]) {
                if let Some((value, after)) = self.quoted(v) {
                    insert(out, limits, key, Value::String(value));
                    next = self.next_key(after, true);
                    continue;
                }
            }
            // A word right after the separator is the value even if it looks like a key
            // (`k=a=b`); after skipped blanks, a key there means the value is empty.
            next = self.next_key(v, v > value_start);
            let end = next.unwrap_or(self.body.len());
            let value = self.body[v..end].trim_ascii_end();
            insert(out, limits, key, Value::String(text(value)));
        }
    }

    fn split(&self, out: &mut Outcome, limits: &Limits) {
        let mut i = 0;
        while i < self.body.len() {
            // One part: up to the next separator outside quotes.
            let start = i;
            let mut quote = None;
            while i < self.body.len() {
                let b = self.body[i];
                match quote {
                    Some(_) if b == b'\\' => i += 1,
                    Some(q) if b == q => quote = None,
                    Some(_) => {}
                    None if self.quotes.contains(&b) => quote = Some(b),
                    None if self.at(i, self.pair_sep) => break,
                    None => {}
                }
                i += 1;
            }
            let part = &self.body[start..i.min(self.body.len())];
            i += self.pair_sep.len();
            let part = part.trim_ascii();
            let Some(sep) = part
                .windows(self.kv_sep.len())
                .position(|w| w == self.kv_sep)
            else {
                continue;
            };
            let key = part[..sep].trim_ascii();
            if key.is_empty() {
                continue;
            }
            let value = part[sep + self.kv_sep.len()..].trim_ascii();
            let value = match value.first() {
                Some(q)
                    if self.quotes.contains(q) && value.len() >= 2 && value.last() == Some(q) =>
                {
                    let inner = Scan {
                        body: value,
                        ..*self
                    };
                    inner.quoted(0).map_or_else(|| text(value), |(v, _)| v)
                }
                _ => text(value),
            };
            insert(out, limits, text(key), Value::String(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Kind;
    use super::*;

    fn parse(body: &str, pair_sep: &str, kv_sep: &str) -> Outcome {
        let options = KvOptions {
            pair_sep: pair_sep.into(),
            kv_sep: kv_sep.into(),
            quotes: "\"'".into(),
        };
        kv(body.as_bytes(), &options, &Limits::default())
    }

    #[test]
    fn blank_separated_values_take_stray_words_and_quotes() {
        let o = parse(r#"junk IN=em1 OUT= ID=9434 DF q="a b=c" k=a=b"#, " ", "=");
        assert_eq!(o.kind(), Kind::Parsed);
        assert_eq!(o.fields["IN"], "em1");
        assert_eq!(o.fields["OUT"], "");
        assert_eq!(o.fields["ID"], "9434 DF");
        assert_eq!(o.fields["q"], "a b=c");
        assert_eq!(o.fields["k"], "a=b");
        assert_eq!(o.fields.len(), 5, "words before the first pair are skipped");
    }

    #[test]
    fn other_separators_split_and_skip_parts_without_a_key() {
        let o = parse("a=1; b=x y; stray words; c=\"q;r\";", ";", "=");
        assert_eq!(o.fields["a"], "1");
        assert_eq!(o.fields["b"], "x y");
        assert_eq!(o.fields["c"], "q;r");
        assert_eq!(o.fields.len(), 3);
        assert_eq!(parse("=v", " ", "=").kind(), Kind::Failed);
        assert_eq!(parse("name", " ", "=").kind(), Kind::Failed);
    }
}
