//! Building `[[rule]]` entries: a [`Rule`] from a [`RawRule`], its selector and `match`
//! pattern parsed and the outputs and inputs it names resolved. Rules are built once every
//! file's outputs and inputs are known.

use std::collections::BTreeMap;

use regex::bytes::Regex;
use toml::Spanned;

use super::check::Check;
use super::raw::RawRule;
use super::settings::{InputSettings, OutputSettings};
use crate::route::{Rule, Selector};

pub(super) fn build_rule(
    check: &mut Check<'_>,
    rule: &Spanned<RawRule>,
    outputs: &[OutputSettings],
    inputs: &BTreeMap<String, InputSettings>,
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
    let discard = raw.discard.as_ref().is_some_and(|d| *d.get_ref());
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
        outputs: indexes,
        // A discard rule is a final rule with no outputs: nothing after it sees the message.
        is_final: discard || raw.is_final.as_ref().is_some_and(|f| *f.get_ref()),
    })
}
