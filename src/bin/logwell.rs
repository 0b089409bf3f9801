//! `logwell`: the client. Thin: parse arguments, run, exit code.

use clap::Parser;

fn main() {
    std::process::exit(logwell::cli::run(logwell::cli::Args::parse()));
}
