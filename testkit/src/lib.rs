//! logwell's test kit: what the integration tests (`tests/it/`) and the benchmarks (`bench/`)
//! both need to run the real daemon against real peers on loopback. It is a dev-dependency
//! only, never part of the shipped crate, and knows nothing of logwell's code.
//!
//! # Layout
//! - [`ports`]: free loopback ports, never the same one twice in a process.
//! - [`wait`]: polling a condition with a deadline and a message saying what was awaited.
//! - [`child`]: a started process, stopped by its PID and reaped when dropped, its output
//!   captured to a file.
//! - [`logwelld`]: the daemon under test started on a config, and its counters.
//! - [`peers`]: rsyslogd and syslog-ng as `scripts/peers.sh` unpacked them.
//! - [`journald`]: a private `systemd-journald` namespace.
//! - [`broker`]: the Tansu Kafka broker on a loopback port with memory storage.
//! - [`clickhouse`]: Debian's ClickHouse server on loopback ports, queried over HTTP.
//! - [`pki`]: CA, server and client certificates made with the `openssl` command line.
//!
//! Every helper returns `Result<_, String>` with a message that says what failed and what to
//! do: the benchmarks skip a case on it, the tests panic with [`OrPanic::or_panic`].
//!
//! Invariants: loopback only; only the processes the kit started are signalled, by their
//! PIDs; no blind sleeps (every wait polls a condition until a deadline).

#![deny(missing_docs)]

pub mod broker;
pub mod child;
pub mod clickhouse;
pub mod journald;
pub mod logwelld;
pub mod peers;
pub mod pki;
pub mod ports;
pub mod wait;

/// Turns a kit error into a panic showing the message as it is (`expect` would quote it and
/// escape its newlines, which hides a peer's log).
pub trait OrPanic<T> {
    /// The value, or a panic with the error's text.
    fn or_panic(self) -> T;
}

impl<T> OrPanic<T> for Result<T, String> {
    #[track_caller]
    fn or_panic(self) -> T {
        self.unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Whether a missing precondition (`why`) must fail rather than skip: under `CI=true` every
/// peer is expected to be there.
pub fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}
