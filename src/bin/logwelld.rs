//! `logwelld`: the daemon. Thin: arguments → config → run → exit code. The arguments are
//! defined in `logwell::cli::logwelld`.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use logwell::cli::{generate, logwelld::Args};
use logwell::config::{self, ConfigPaths};

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(kind) = args.generate {
        generate::write(kind, Args::command(), &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let mut paths = ConfigPaths::beside(&args.config);
    if args.conf_dir.is_some() {
        paths.drop_in_dir = args.conf_dir;
    }
    if let Some([name, message]) = args.render_template.as_deref() {
        let rendered = config::load(&paths)
            .map_err(|e| e.to_string())
            .and_then(|s| logwell::cli::logwelld::render_template(&s, name, message));
        return match rendered {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        };
    }
    if args.check_config {
        return match config::load(&paths) {
            Ok(s) => {
                // Faults of the environment are warnings: at start they degrade only the
                // input they touch.
                for fault in s.inputs.iter().flat_map(logwell::input::probe) {
                    eprintln!("warning: {fault}\n  (at start, this input alone would be degraded; the others run)");
                }
                for w in s.follow.iter().flat_map(|f| &f.warnings) {
                    eprintln!("warning: {w}");
                }
                for w in &s.warnings {
                    eprintln!("warning: {w}");
                }
                for f in &s.rsyslog_files {
                    eprintln!("rsyslog drop-in read: {}", f.display());
                }
                println!(
                    "{}: OK ({} inputs, {} outputs, {} rules)",
                    args.config.display(),
                    s.inputs.len(),
                    s.outputs.len(),
                    s.rules.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        };
    }
    match logwell::daemon::run(paths) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("logwelld: {e}");
            ExitCode::from(1)
        }
    }
}
