//! The file store: logwell's own log files, from naming to reading back. Everything that
//! knows the layout of a file set on disk lives here; the writers in [`crate::output`] decide
//! *what* to write and *when*, this module knows *where* and *how it ages*.
//!
//! - [`fileset`]: how a set's generations are named and listed (`syslog`, `syslog.1`,
//!   `syslog.2.zst`, `syslog-20261121`). Pure naming, a leaf: the renderers' collision checks
//!   and config import it too.
//! - [`rotate`]: rotation and retention, run by a writer thread between two writes, and
//!   recovery at start.
//! - [`compress`]: the one background worker that compresses rotated generations, crash-safe.
//! - [`created`]: the record of files a templated output created, which its age sweep may
//!   delete.
//! - [`history`]: the reading side: a set's rotated, compressed and live generations as one
//!   stream, with positions that survive rotation (used by `follow`, `logwell show` and `cat`).
//!
//! Every file-system change here goes through [`crate::host::fsops`], so it reaches the
//! privileged parent under privilege separation.

pub mod compress;
pub mod created;
pub mod fileset;
pub mod history;
pub mod rotate;
