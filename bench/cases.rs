//! The command line of the smaller benchmarks (`forward`, `kafka`): case names to run some
//! (none: all), `--quick` for fewer messages, and `LOGWELL_BENCH_MESSAGES=N` to set the count.
//! It only reads arguments and the environment.

/// The cases asked for and how many messages each sends.
pub struct Selection {
    named: Vec<String>,
    quick: bool,
}

impl Selection {
    /// From this process's arguments (Cargo's `--bench` is ignored with the other options).
    pub fn from_args() -> Selection {
        let args: Vec<String> = std::env::args().skip(1).collect();
        Selection {
            quick: args.iter().any(|a| a == "--quick"),
            named: args.into_iter().filter(|a| !a.starts_with('-')).collect(),
        }
    }

    /// Whether case `name` runs.
    pub fn wants(&self, name: &str) -> bool {
        self.named.is_empty() || self.named.iter().any(|n| n == name)
    }

    /// `LOGWELL_BENCH_MESSAGES`, else `quick` with `--quick`, else `full`.
    pub fn messages(&self, full: u64, quick: u64) -> u64 {
        std::env::var("LOGWELL_BENCH_MESSAGES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if self.quick { quick } else { full })
    }
}
