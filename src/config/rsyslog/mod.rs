//! rsyslog's configuration, read and translated: [`parse`] reads the language into
//! statements; [`translate()`] turns them into logwell TOML and a report of what it could not
//! take. Used for other packages' `/etc/rsyslog.d` drop-ins at each start and reload, and by
//! `logwell import-rsyslog`.

pub mod eval;
pub mod parse;
pub mod translate;

pub use translate::{translate, NoteKind, Options};
