//! logwell: a syslog daemon (`logwelld`) and its client (`logwell`).
//!
//! # Layout
//!
//! Follow a datagram from the socket to the file:
//!
//! - [`input`]: where messages enter. One file per kind (`udp`, `tcp`, `unix`); each reads in
//!   batches and hands frames to the pipeline.
//! - [`parse`]: pure parsers. `framing` splits streams (RFC 6587); `parse()` reads RFC 5424 and
//!   RFC 3164 into a [`message::Message`].
//! - [`route`]: rsyslog-style selectors and matches decide which actions get a message.
//! - [`output`]: formats messages into lines and writes them to files in batches.
//! - [`pipeline`]: ties parse → route → format together for one input task, with no
//!   per-message allocation.
//! - [`config`]: TOML → validated settings, every error with file, line and hint.
//! - [`daemon`]: lifecycle: start, signals, reload, shutdown, control socket.
//! - [`stats`]: counters per input and output.
//! - [`cli`]: the `logwell` client's subcommands.
#![deny(missing_docs)]

pub mod message;
pub mod parse;
