//! Building `[[rule]]` entries: a [`Rule`] from a [`RawRule`], its selector and `match`
//! pattern parsed and the outputs and inputs it names resolved. Rules are built once every
//! file's outputs and inputs are known.

use std::collections::BTreeMap;

use regex::bytes::Regex;
use toml::Spanned;

use super::check::Check;
use super::raw::RawRule;
use super::settings::{InputSettings, OutputSettings};
use crate::parse::body::BodyParser;
use crate::rewrite::{Mask, MaskKind, Rewrite, Target};
use crate::route::{Cmp, FieldCheck, FieldRef, FieldTest, Header, Rule, Selector};

pub(super) fn build_rule(
    check: &mut Check<'_>,
    rule: &Spanned<RawRule>,
    outputs: &[OutputSettings],
    inputs: &BTreeMap<String, InputSettings>,
    templates: &BTreeMap<String, std::sync::Arc<crate::render::line_template::LineTemplate>>,
) -> Option<Rule> {
    let raw = rule.get_ref();
    let errors_before = check.errors.len();
    let selector = match &raw.selector {
        None => Selector::ALL,
        Some(s) => Selector::parse(s.get_ref()).unwrap_or_else(|e| {
            check.err(s.span(), format!("bad selector `{}`: {e}", s.get_ref()), "selectors are written as in rsyslog: \"*.*;auth,authpriv.none\", \"kern.*\", \"mail.err\", \"*.=info\"");
            Selector::ALL
        }),
    };
    let pattern = raw
        .pattern
        .as_ref()
        .and_then(|p| match Regex::new(p.get_ref()) {
            Ok(r) => Some(r),
            Err(e) => {
                check.err(
                    p.span(),
                    format!("`match` is not a valid regex: {e}"),
                    "see https://docs.rs/regex for the syntax; escape special characters with \\\\",
                );
                None
            }
        });
    let fields = field_tests(check, raw);
    let rewrite = rewrite_steps(check, raw, templates);
    let discard = raw.discard.as_ref().is_some_and(|d| *d.get_ref());
    if let (true, Some(_)) = (discard, &rewrite) {
        check.err(
            rule.span(),
            "a rule with `discard = true` drops the message, so its rewrite steps have no effect",
            "put the steps in a rule of their own, before the rules whose outputs should see the change",
        );
    }
    let names = match (&raw.output, discard) {
        (Some(out), true) => {
            check.err(
                out.span(),
                "a rule with `discard = true` writes nowhere, so `output` has no meaning",
                "remove `output`, or put the outputs in a rule before this one",
            );
            return None;
        }
        (None, true) => Vec::new(),
        (Some(out), false) => out.get_ref().clone_vec(),
        // A rule of rewrite steps alone changes what the rules after it see.
        (None, false) if rewrite.is_some() => Vec::new(),
        (None, false) => {
            check.err(
                rule.span(),
                "this rule has no `output`",
                "add output = \"NAME\" naming an [output.NAME] section, or discard = true to drop what it matches",
            );
            return None;
        }
    };
    let out_span = raw.output.as_ref().map(|o| o.span()).unwrap_or_default();
    let mut indexes = Vec::new();
    for name in names {
        match outputs.iter().position(|o| o.name == name) {
            Some(i) => indexes.push(i),
            None => {
                let known: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
                let hint = if known.is_empty() {
                    format!("declare it: [output.{name}] with type = \"file\" and a path")
                } else {
                    format!(
                        "declare [output.{name}], or use one of: {}",
                        known.join(", ")
                    )
                };
                check.err(
                    out_span.clone(),
                    format!("no output is named `{name}`"),
                    hint,
                );
            }
        }
    }
    let input_names = raw
        .input
        .as_ref()
        .map(|i| i.get_ref().clone_vec())
        .unwrap_or_default();
    for name in &input_names {
        if !inputs.contains_key(name) {
            let span = raw.input.as_ref().map(|i| i.span()).unwrap_or_default();
            check.err(
                span,
                format!("no input is named `{name}`"),
                "name an [input.NAME] section",
            );
        }
    }
    if check.errors.len() > errors_before {
        return None;
    }
    Some(Rule {
        selector,
        programs: raw
            .program
            .as_ref()
            .map(|p| p.get_ref().clone_vec())
            .unwrap_or_default(),
        hostnames: raw
            .hostname
            .as_ref()
            .map(|p| p.get_ref().clone_vec())
            .unwrap_or_default(),
        tls_peers: raw
            .tls_peer
            .as_ref()
            .map(|p| p.get_ref().clone_vec())
            .unwrap_or_default(),
        inputs: input_names,
        units: raw
            .unit
            .as_ref()
            .map(|u| u.get_ref().clone_vec())
            .unwrap_or_default(),
        pattern,
        fields,
        outputs: indexes,
        // A discard rule is a final rule with no outputs: nothing after it sees the message.
        is_final: discard || raw.is_final.as_ref().is_some_and(|f| *f.get_ref()),
        rewrite: rewrite.map(std::sync::Arc::new),
    })
}

/// The rule's rewrite steps (`set`, `remove`, `drop_fields`, `[[rule.mask]]`), if any.
fn rewrite_steps(
    check: &mut Check<'_>,
    raw: &RawRule,
    templates: &BTreeMap<String, std::sync::Arc<crate::render::line_template::LineTemplate>>,
) -> Option<Rewrite> {
    const TARGETS: &str =
        "name host, tag, procid, msgid, msg, facility, severity, or fields.NAME (nested by dots)";
    let mut r = Rewrite::default();
    if let Some(listed) = &raw.parse {
        for name in listed.get_ref().clone_vec() {
            let parser = if name == "regex" {
                match &raw.parse_regex {
                    Some(re) => match regex::bytes::Regex::new(re.get_ref()) {
                        Ok(rx) if rx.capture_names().flatten().next().is_some() => {
                            Some(BodyParser::Regex(rx))
                        }
                        Ok(_) => {
                            check.err(
                                re.span(),
                                "the regex has no named group, so it would read no field",
                                "name the groups: (?P<user>\\w+)",
                            );
                            None
                        }
                        Err(e) => {
                            check.err(
                                re.span(),
                                format!("`parse_regex` is not a valid regex: {e}"),
                                "see https://docs.rs/regex for the syntax",
                            );
                            None
                        }
                    },
                    None => {
                        check.err(listed.span(), "`regex` in parse needs the rule's `parse_regex`", "add parse_regex = \"(?P<user>\\\\w+)\": each named group becomes a field");
                        None
                    }
                }
            } else {
                let p = BodyParser::from_name(&name);
                if p.is_none() {
                    check.err(
                        listed.span(),
                        format!("`{name}` is not a body parser"),
                        format!("use one of {}", BodyParser::NAMES.join(", ")),
                    );
                }
                p
            };
            r.parse.extend(parser);
        }
    } else if let Some(re) = &raw.parse_regex {
        check.err(
            re.span(),
            "`parse_regex` is read only when `parse` names regex",
            "add parse = \"regex\"",
        );
    }
    if let Some(set) = &raw.set {
        for (name, text) in set.get_ref() {
            let Some(target) = Target::from_name(name) else {
                check.err(
                    set.span(),
                    format!("`set.\"{name}\"`: not a value a rule can set"),
                    TARGETS,
                );
                continue;
            };
            let template = match templates.get(text) {
                Some(t) => Some(t.clone()),
                None => match crate::render::line_template::LineTemplate::parse_value(text) {
                    Ok(t) => Some(std::sync::Arc::new(t)),
                    Err(e) => {
                        check.err(set.span(), format!("`set.\"{name}\"`: {e}"), "a value is a template: text with fields in braces, such as \"{fields.user}\" or \"prod\"");
                        None
                    }
                },
            };
            if let Some(t) = template {
                r.set.push((target, t));
            }
        }
    }
    if let Some(remove) = &raw.remove {
        for name in remove.get_ref().clone_vec() {
            match Target::from_name(&name) {
                Some(Target::Facility | Target::Severity) | None => check.err(
                    remove.span(),
                    format!("`remove`: `{name}` is not a value a rule can remove"),
                    "name host, tag, procid, msgid, msg, or fields.NAME",
                ),
                Some(t) => r.remove.push(t),
            }
        }
    }
    if let Some(d) = &raw.drop_fields {
        r.drop_fields = d.get_ref().clone_vec();
    }
    for m in raw.mask.iter().flatten() {
        let raw = m.get_ref();
        let target = match Target::from_name(raw.field.get_ref()) {
            Some(Target::Facility | Target::Severity) | None => {
                check.err(
                    raw.field.span(),
                    format!("`field = \"{}\"` cannot be masked", raw.field.get_ref()),
                    "name host, tag, procid, msgid, msg, or fields.NAME",
                );
                continue;
            }
            Some(t) => t,
        };
        let ways = [
            raw.ipv4.is_some(),
            raw.ipv6.is_some(),
            raw.card.is_some(),
            raw.regex.is_some(),
        ]
        .iter()
        .filter(|w| **w)
        .count();
        if ways != 1 {
            check.err(m.span(), "a [[rule.mask]] masks one way", "give exactly one of ipv4 = BITS, ipv6 = BITS, card = true, regex = \"...\" (add one [[rule.mask]] per way)");
            continue;
        }
        let kind = if let Some(b) = &raw.ipv4 {
            check
                .range(&raw.ipv4, "ipv4", 0, 32)
                .map(|_| MaskKind::Ipv4(*b.get_ref() as u8))
        } else if let Some(b) = &raw.ipv6 {
            check
                .range(&raw.ipv6, "ipv6", 0, 128)
                .map(|_| MaskKind::Ipv6(*b.get_ref() as u8))
        } else if raw.card.as_ref().is_some_and(|c| *c.get_ref()) {
            Some(MaskKind::Card)
        } else if let Some(re) = &raw.regex {
            match regex::bytes::Regex::new(re.get_ref()) {
                Ok(rx) => Some(MaskKind::Regex(
                    rx,
                    raw.with
                        .as_ref()
                        .map_or_else(|| "***".to_string(), |w| w.get_ref().clone()),
                )),
                Err(e) => {
                    check.err(
                        re.span(),
                        format!("`regex` is not a valid regex: {e}"),
                        "see https://docs.rs/regex for the syntax",
                    );
                    None
                }
            }
        } else {
            None
        };
        if let Some(kind) = kind {
            r.mask.push(Mask { target, kind });
        }
    }
    let empty = r.parse.is_empty()
        && r.set.is_empty()
        && r.remove.is_empty()
        && r.drop_fields.is_empty()
        && r.mask.is_empty();
    (!empty).then_some(r)
}

/// How a field is named in a rule: `fields.NAME`, nested by dots (`fields.req.path`).
const FIELD_HINT: &str = "name a field as fields.NAME (nested: fields.req.path): the fields an input's `parse` reads, or a journal field such as fields._SYSTEMD_UNIT; rules also take the header values host, tag, procid, msgid, msg and peer, and rsyslog's syslogtag, programname, fromhost_ip and rsyslog_msg";

/// The path under `fields.` of a rule's (or an input's `*_from`) field name, or an error on
/// `span`.
pub(super) fn field_path(
    check: &mut Check<'_>,
    name: &str,
    span: std::ops::Range<usize>,
) -> Option<String> {
    match name.strip_prefix("fields.") {
        Some(path) if !path.is_empty() && !path.split('.').any(str::is_empty) => {
            Some(path.to_string())
        }
        _ => {
            check.err(span, format!("`{name}` is not a field name"), FIELD_HINT);
            None
        }
    }
}

/// A rule's field: a header value (`host`, `tag`, `msg`, …) or `fields.NAME`.
fn field_ref(check: &mut Check<'_>, name: &str, span: std::ops::Range<usize>) -> Option<FieldRef> {
    match Header::from_name(name) {
        Some(h) => Some(FieldRef::Header(h)),
        None => field_path(check, name, span).map(FieldRef::Path),
    }
}

/// The rule's conditions on fields: `field`, `field_match`, `field_not_match`, `exists` and
/// `where`.
fn field_tests(check: &mut Check<'_>, raw: &RawRule) -> Vec<FieldTest> {
    let mut tests = Vec::new();
    if let Some(f) = &raw.field {
        for (name, values) in f.get_ref() {
            if let Some(field) = field_ref(check, name, f.span()) {
                let test = FieldCheck::OneOf(values.clone_vec());
                tests.push(FieldTest { field, test });
            }
        }
    }
    for (key, map, negated) in [
        ("field_match", &raw.field_match, false),
        ("field_not_match", &raw.field_not_match, true),
    ] {
        let Some(f) = map else { continue };
        for (name, patterns) in f.get_ref() {
            let field = field_ref(check, name, f.span());
            for pattern in patterns.clone_vec() {
                match Regex::new(&pattern) {
                    Ok(re) => tests.extend(field.clone().map(|field| FieldTest {
                        field,
                        test: if negated {
                            FieldCheck::NotMatches(re)
                        } else {
                            FieldCheck::Matches(re)
                        },
                    })),
                    Err(e) => check.err(
                        f.span(),
                        format!("`{key}.\"{name}\"` is not a valid regex: {e}"),
                        "see https://docs.rs/regex for the syntax",
                    ),
                }
            }
        }
    }
    if let Some(e) = &raw.exists {
        for name in e.get_ref().clone_vec() {
            if let Some(field) = field_ref(check, &name, e.span()) {
                tests.push(FieldTest {
                    field,
                    test: FieldCheck::Exists,
                });
            }
        }
    }
    if let Some(w) = &raw.compare {
        for text in w.get_ref().clone_vec() {
            match comparison(&text) {
                Some((name, op, n)) => {
                    if let Some(field) = field_ref(check, name, w.span()) {
                        tests.push(FieldTest {
                            field,
                            test: FieldCheck::Compare(op, n),
                        });
                    }
                }
                None => check.err(
                    w.span(),
                    format!("`{text}` is not a comparison"),
                    "write FIELD OP NUMBER, such as \"fields.duration_ms > 1000\" (OP: > >= < <= == !=)",
                ),
            }
        }
    }
    tests
}

/// `fields.took_ms >= 1000`: the field's name, the operator, and the number.
fn comparison(text: &str) -> Option<(&str, Cmp, f64)> {
    let (at, sign, op) = Cmp::ALL
        .iter()
        .filter_map(|(sign, op)| text.find(sign).map(|at| (at, *sign, *op)))
        .min_by_key(|(at, sign, _)| (*at, usize::MAX - sign.len()))?;
    let name = text[..at].trim();
    let n: f64 = text[at + sign.len()..].trim().parse().ok()?;
    (!name.is_empty() && n.is_finite()).then_some((name, op, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_read_field_operator_and_number() {
        assert_eq!(
            comparison("fields.a >= 10"),
            Some(("fields.a", Cmp::Ge, 10.0))
        );
        assert_eq!(comparison("fields.a>1.5"), Some(("fields.a", Cmp::Gt, 1.5)));
        assert_eq!(
            comparison("fields.a != -2"),
            Some(("fields.a", Cmp::Ne, -2.0))
        );
        assert_eq!(comparison("fields.a < x"), None);
        assert_eq!(comparison("> 3"), None);
        assert_eq!(comparison("fields.a"), None);
    }
}
