//! `logwell rotate [FILE…]`: asks the running daemon to rotate files now (all file outputs
//! when none is named; a FILE is an output's name or its path).

use super::DaemonAddr;

/// Arguments of `logwell rotate`.
#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// Output names or file paths; every file output when none.
    #[arg(value_name = "FILE")]
    pub files: Vec<String>,
    /// Where the daemon is.
    #[command(flatten)]
    pub daemon: DaemonAddr,
}

/// Asks the daemon and prints what was rotated.
pub fn run(args: &RotateArgs) -> Result<(), String> {
    let socket = args.daemon.socket()?;
    let mut command = String::from("rotate");
    for f in &args.files {
        if f.contains(char::is_whitespace) {
            return Err(format!("`{f}`: names and paths with spaces cannot be rotated by name; rotate all with no argument"));
        }
        command.push(' ');
        command.push_str(f);
    }
    let reply = crate::daemon::control::request(&socket, &command).map_err(|e| {
        format!(
            "cannot reach logwelld at {}: {e} (is it running? pass --socket or --config)",
            socket.display()
        )
    })?;
    let answer: serde_json::Value = serde_json::from_str(reply.trim())
        .map_err(|e| format!("unexpected answer from logwelld: {e}: {}", reply.trim()))?;
    if let Some(e) = answer.get("error").and_then(|e| e.as_str()) {
        return Err(e.to_string());
    }
    for r in answer["rotated"].as_array().into_iter().flatten() {
        println!(
            "{} -> {}",
            r["file"].as_str().unwrap_or("?"),
            r["to"].as_str().unwrap_or("?")
        );
    }
    let errors: Vec<&str> = answer["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str())
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}
