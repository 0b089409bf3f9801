//! The kernel log input: reads `/dev/kmsg` records (`pri,seq,usec,flags;text` with
//! continuation lines) and feeds them to the pipeline as kern messages.

use std::fs::File;

use super::{InputContext, InputError};
use crate::config::KmsgSettings;

/// Opens the device (as root, before privileges are dropped).
pub fn open(name: &str, s: &KmsgSettings) -> Result<File, InputError> {
    File::open(&s.path).map_err(|source| InputError::Open {
        input: name.to_string(),
        what: s.path.display().to_string(),
        source,
    })
}

/// Spawns the reader. Not implemented yet.
pub fn spawn(_device: File, _s: &KmsgSettings, ctx: InputContext) -> std::io::Result<()> {
    tracing::warn!(input = %ctx.name, "the kmsg input is not implemented yet");
    Ok(())
}
