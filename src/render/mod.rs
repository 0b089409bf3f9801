//! Renderers: pure functions from a message to bytes, run on the input tasks' hot path and
//! by nothing that does I/O. [`format`](mod@format) writes the line formats of files and forwards (and
//! owns their [`Format`] names); [`line_template`] the lines of outputs that set `template`;
//! [`template`] renders templated file paths, and [`kafka_template`] Kafka topics and keys,
//! from a message's fields.
//!
//! They sit below `config`, which parses templates and format names while it validates, and
//! below the outputs and the pipeline, which render with them.

pub mod format;
pub mod kafka_template;
pub mod line_template;
pub mod template;

pub use format::Format;
