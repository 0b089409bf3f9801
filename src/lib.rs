//! logwell: a syslog daemon (`logwelld`) and its client (`logwell`).
//!
//! # Layout
//!
//! Follow a datagram from the socket to the file (ARCHITECTURE.md has the diagram):
//!
//! - [`input`]: where messages enter. One file per kind ([`input::udp`], [`input::tcp`],
//!   [`input::tls`], [`input::unix`]); [`input::dgram`] reads datagrams in `recvmmsg` batches
//!   (each UDP socket on a thread of its own, [`input::udp`], that paces its reads) and
//!   [`input::stream`] is the one accept loop and connection loop of TCP, Unix stream and TLS
//!   (one task per connection; TLS plugs in its handshake as an upgrade step);
//!   [`input::limits`] enforces `permit`, per-peer connection caps and rate limits, and the
//!   frame timeout; [`input::nofile`] raises the descriptor limit and keeps a reserve.
//!   [`input::journal`], [`input::kmsg`] and [`input::file`] (other programs' log files,
//!   followed across rotation with checkpoints) build messages themselves.
//! - [`parse`]: pure parsers. [`parse::framing`] splits streams (RFC 6587);
//!   [`parse::parse`] reads RFC 5424 and RFC 3164 into a [`message::Message`].
//! - [`pipeline`]: parse → route → format for one input task, with no per-message
//!   allocation; sends whole-line chunks to the outputs.
//! - [`route`]: rsyslog-style selectors and matches decide which outputs get a message.
//! - [`render`]: pure renderers run on the input tasks: line formats ([`render::format`]),
//!   templated paths ([`render::template`]) and Kafka topic and key templates
//!   ([`render::kafka_template`]).
//! - [`output`]: the file writer thread ([`output::file`]); templated paths' writer with its
//!   bounded set of open files and repeat reduction ([`output::dynfile`]); the terminals of
//!   logged-in users ([`output::users`]); remote syslog servers over UDP, TCP or TLS
//!   ([`output::forward`], each action on its own thread with its own [`queue`]); Kafka topics
//!   (`output::kafka`, cargo feature `kafka`, librdkafka), through its own [`queue`] too. The
//!   queued actions share one intake and their queue's opening and closing
//!   (`output::queued`); the records input tasks write into chunks for templated files and
//!   Kafka have one codec (`output::records`).
//! - [`store`]: the file store. How a log file's generations are named ([`store::fileset`],
//!   pure, shared by rotation, history and the templates' collision checks); rotation and
//!   retention ([`store::rotate`]), background compression ([`store::compress`]), the record
//!   of the files a templated output created ([`store::created`], what its age sweep may
//!   delete); and the reading side, [`store::history`], which reads a file set's rotated,
//!   compressed and live generations as one stream.
//! - [`host`]: every file-system change the outputs make ([`host::fsops`]), carried to the
//!   privileged parent under privilege separation, and the wire and client of that channel.
//! - [`follow`]: live follow over HTTP/SSE ([`follow::http`]), on TCP and on a local Unix
//!   socket whose clients are authorised by their credentials ([`follow::local`]), and raw TCP
//!   ([`follow::tcp`]):
//!   history then live lines, filtered ([`follow::line`]), read from the files by each
//!   subscriber ([`follow::subscription`]), never from the receive path.
//! - [`config`]: TOML → validated [`config::Settings`], every error with file, line and hint;
//!   network limits' settings ([`config::limits`]) and every TLS file and rustls
//!   configuration (`config::tls`). ARCHITECTURE.md's "Layers" table says what each module
//!   may import, and a test holds the code to it.
//! - [`daemon`]: lifecycle: start, SIGHUP reload, SIGTERM shutdown, the control socket, and
//!   privilege separation ([`daemon::privsep`]): a root parent that only opens, renames and
//!   removes the output files (reached through [`host::fsops`]) for an unprivileged worker.
//! - [`queue`]: the per-action disk-assisted queue (memory, then checksummed segment files in
//!   the state directory) that forwarding and Kafka deliver from, at least once; [`queue::record`] is
//!   its pure record codec.
//! - [`stats`]: counters per input and output, and each input's state (running, idle,
//!   degraded by a fault of its environment).
//! - [`cli`]: the `logwell` client's subcommands (`stats`, `rotate`, `cat`, `follow`, `show`), `logwelld`'s
//!   arguments ([`cli::logwelld`]) and the completion scripts ([`cli::generate`]).
#![deny(missing_docs)]
// The library exists for the two binaries and the tests; its documentation is read with
// `cargo doc --document-private-items`, where the module docs' links to private items (the
// places a newcomer should look) resolve.
#![allow(rustdoc::private_intra_doc_links)]

pub mod cli;
pub mod config;
pub mod daemon;
pub mod follow;
pub mod host;
pub mod input;
pub mod message;
pub mod output;
pub mod parse;
pub mod pipeline;
pub mod queue;
pub mod render;
pub mod rewrite;
pub mod route;
pub mod stats;
pub mod store;
