//! The command-line arguments of `logwelld`, the daemon. They live in the library, beside the
//! client's, so that the man-page test and the completion generator read the same definitions
//! `src/bin/logwelld.rs` parses.

use std::path::PathBuf;

use std::sync::Arc;

use super::generate::Generate;
use crate::config::Settings;
use crate::message::{Event, Source};
use crate::parse::body::{first_that_reads, Limits};
use crate::parse::{parse, ParseContext};
use crate::render::format::TimeCache;

/// Command-line arguments of `logwelld`.
#[derive(Debug, clap::Parser)]
#[command(name = "logwelld", version, about = "The logwell syslog daemon")]
pub struct Args {
    /// Main configuration file.
    #[arg(
        short,
        long,
        value_name = "FILE",
        default_value = "/etc/logwell/logwell.toml"
    )]
    pub config: PathBuf,
    /// Drop-in directory read after the main file (`*.toml`, in name order). Default: `conf.d`
    /// beside the main file.
    #[arg(long, value_name = "DIR")]
    pub conf_dir: Option<PathBuf>,
    /// Validate the configuration, print every problem, and exit (non-zero if any).
    #[arg(long)]
    pub check_config: bool,
    /// Print the line that a template (`[template.NAME]`, or the output NAME's `template`)
    /// makes of MESSAGE, a syslog message as received (`<13>Nov 21 09:41:03 host app: {"a":1}`),
    /// and exit. The body is read with the `parse` of the first input (by name) that has one.
    #[arg(long, num_args = 2, value_names = ["NAME", "MESSAGE"])]
    pub render_template: Option<Vec<String>>,
    /// Print a shell completion script and exit (for packaging).
    #[arg(long, value_name = "KIND", hide = true, exclusive = true)]
    pub generate: Option<Generate>,
}

/// `--render-template NAME MESSAGE`: the line the template makes of the message, as an output
/// would write it (without its `\n`), or what is wrong.
pub fn render_template(settings: &Settings, name: &str, message: &str) -> Result<String, String> {
    let template = settings
        .templates
        .get(name)
        .or_else(|| {
            settings
                .outputs
                .iter()
                .find(|o| o.name == name)
                .and_then(|o| o.template.as_ref())
        })
        .ok_or_else(|| {
            let mut known: std::collections::BTreeSet<&str> =
                settings.templates.keys().map(String::as_str).collect();
            known.extend(
                settings
                    .outputs
                    .iter()
                    .filter(|o| o.template.is_some())
                    .map(|o| o.name.as_str()),
            );
            let known: Vec<&str> = known.into_iter().collect();
            format!(
                "no template or output with a template is named `{name}`{}",
                if known.is_empty() {
                    String::new()
                } else {
                    format!(" (there are: {})", known.join(", "))
                }
            )
        })?;
    let now = chrono::Utc::now();
    let mut time = TimeCache::default();
    let ctx = ParseContext::new(now, time.local_offset(now));
    let mut msg = parse(message.as_bytes(), &ctx);
    let parsers = settings.inputs.iter().find(|i| !i.parse.is_empty());
    let parsed = parsers.and_then(|i| first_that_reads(&i.parse, msg.msg, &Limits::default()));
    msg.parsed = parsed.as_ref().map(|o| &o.fields).filter(|f| !f.is_empty());
    if let Some(input) = parsers.filter(|_| msg.parsed.is_some()) {
        input.header_from.apply(&mut msg);
    }
    let source = Source {
        input: Arc::from(parsers.map_or("render-template", |i| i.name.as_str())),
        peer: None,
        creds: None,
        default_host: Arc::from(settings.daemon.hostname.as_str()),
        use_sender_timestamp: true,
        tls_peer: None,
    };
    let ev = Event {
        msg,
        recv_time: now,
        source: &source,
        creds: None,
    };
    let mut out = Vec::new();
    template.render(&ev, &mut time, &mut out);
    out.pop();
    Ok(String::from_utf8_lossy(&out).into_owned())
}
