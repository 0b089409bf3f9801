//! The command-line arguments of `logwelld`, the daemon. They live in the library, beside the
//! client's, so that the man-page test and the completion generator read the same definitions
//! `src/bin/logwelld.rs` parses.

use std::path::PathBuf;

use super::generate::Generate;

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
    /// Print a shell completion script and exit (for packaging).
    #[arg(long, value_name = "KIND", hide = true, exclusive = true)]
    pub generate: Option<Generate>,
}
