//! `logwelld`: the daemon. Thin: arguments → config → run → exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use logwell::config::{self, ConfigPaths};

/// The logwell syslog daemon.
#[derive(Debug, Parser)]
#[command(name = "logwelld", version, about = "The logwell syslog daemon")]
struct Args {
    /// Main configuration file.
    #[arg(
        short,
        long,
        value_name = "FILE",
        default_value = "/etc/logwell/logwell.toml"
    )]
    config: PathBuf,
    /// Drop-in directory read after the main file (`*.toml`, in name order). Default: `conf.d`
    /// beside the main file.
    #[arg(long, value_name = "DIR")]
    conf_dir: Option<PathBuf>,
    /// Validate the configuration, print every problem, and exit (non-zero if any).
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut paths = ConfigPaths::beside(&args.config);
    if args.conf_dir.is_some() {
        paths.drop_in_dir = args.conf_dir;
    }
    if args.check_config {
        return match config::load(&paths) {
            Ok(s) => {
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
