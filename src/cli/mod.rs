//! The `logwell` client's subcommands, one file each. `src/bin/logwell.rs` only parses the
//! arguments and calls [`run`]. [`logwelld`] holds the daemon's arguments, so that both
//! binaries' definitions can be read by the man-page test and [`generate`]d as completions.

pub mod cat;
pub mod follow;
pub mod generate;
pub mod import;
pub mod logwelld;
pub mod rotate;
pub mod stats;

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use generate::Generate;

/// Command-line arguments of `logwell`.
#[derive(Debug, Parser)]
#[command(
    name = "logwell",
    version,
    about = "Client for logwelld: live follow, history, statistics and rotation",
    arg_required_else_help = true
)]
pub struct Args {
    /// What to do (required unless `--generate` is given).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Print a shell completion script and exit (for packaging).
    #[arg(long, value_name = "KIND", hide = true, exclusive = true)]
    pub generate: Option<Generate>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the counters of each input and output.
    Stats(stats::StatsArgs),
    /// Read a file's history, rotated and compressed generations included, as one stream.
    Cat(cat::CatArgs),
    /// Rotate files now (every file output when none is named).
    Rotate(rotate::RotateArgs),
    /// Print the last lines of a file, then every new one, like `journalctl -f`.
    Follow(follow::FollowArgs),
    /// Print a file's history through the daemon, like `journalctl` (`-f` to follow).
    Show(follow::FollowArgs),
    /// Translate an rsyslog configuration into logwell's (TOML on stdout, report on stderr).
    ImportRsyslog(import::ImportArgs),
}

/// Where to find the daemon: an explicit socket, or the one named by a config file.
#[derive(Debug, clap::Args)]
pub struct DaemonAddr {
    /// The daemon's control socket.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Read the control socket's path from this config file.
    #[arg(
        short,
        long,
        value_name = "FILE",
        default_value = "/etc/logwell/logwell.toml"
    )]
    pub config: PathBuf,
}

impl DaemonAddr {
    /// The control socket path.
    pub fn socket(&self) -> Result<PathBuf, String> {
        if let Some(s) = &self.socket {
            return Ok(s.clone());
        }
        match crate::config::load(&crate::config::ConfigPaths::beside(&self.config)) {
            Ok(s) => Ok(s.daemon.control_socket),
            Err(_) if !self.config.exists() => Ok(PathBuf::from("/run/logwell/control.sock")),
            Err(e) => Err(format!("cannot read {}: {e}", self.config.display())),
        }
    }
}

/// Runs the client; returns the exit code.
pub fn run(args: Args) -> i32 {
    let command = match (args.command, args.generate) {
        (Some(c), _) => c,
        (None, Some(kind)) => {
            generate::write(kind, Args::command(), &mut std::io::stdout());
            return 0;
        }
        // What clap says for a missing subcommand (usage and the list), exit code 2.
        (None, None) => Args::command()
            .error(
                clap::error::ErrorKind::MissingSubcommand,
                "a subcommand is required",
            )
            .exit(),
    };
    let result = match command {
        Command::Stats(a) => stats::run(&a),
        Command::Cat(a) => cat::run(&a),
        Command::Rotate(a) => rotate::run(&a),
        Command::Follow(a) => follow::run(&a, true),
        Command::Show(a) => follow::run(&a, false),
        Command::ImportRsyslog(a) => import::run(&a),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("logwell: {e}");
            1
        }
    }
}
