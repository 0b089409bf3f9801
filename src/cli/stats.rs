//! `logwell stats`: the daemon's counters per input and output, as a table or `--json`.

use super::DaemonAddr;
use crate::stats::Snapshot;

/// Arguments of `logwell stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Where the daemon is.
    #[command(flatten)]
    pub daemon: DaemonAddr,
}

/// Asks the daemon and prints the answer.
pub fn run(args: &StatsArgs) -> Result<(), String> {
    let socket = args.daemon.socket()?;
    let reply = crate::daemon::control::request(&socket, "stats").map_err(|e| {
        format!(
            "cannot reach logwelld at {}: {e} (is it running? pass --socket or --config)",
            socket.display()
        )
    })?;
    let snapshot: Snapshot = serde_json::from_str(reply.trim())
        .map_err(|e| format!("unexpected answer from logwelld: {e}: {}", reply.trim()))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&snapshot).unwrap_or_default()
        );
    } else {
        print!("{}", snapshot.to_text());
    }
    Ok(())
}
