//! Shell completion scripts generated from the clap definitions (`logwell --generate
//! complete-bash`, `logwelld --generate complete-zsh`, as `rg --generate` does). The flag is
//! hidden: it exists for packaging (`scripts/package.sh` writes the scripts the .deb ships), so
//! the completions can never drift from the flags.

use std::io::Write;

use clap::{Command, ValueEnum};
use clap_complete::Shell;

/// What `--generate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    /// A bash completion script (`/usr/share/bash-completion/completions/NAME`).
    CompleteBash,
    /// A zsh completion script (`/usr/share/zsh/vendor-completions/_NAME`).
    CompleteZsh,
    /// A fish completion script (`/usr/share/fish/vendor_completions.d/NAME.fish`).
    CompleteFish,
}

/// Writes the completion script of `cmd` (whose name is the binary's) for `kind` to `out`.
pub fn write(kind: Generate, mut cmd: Command, out: &mut dyn Write) {
    let shell = match kind {
        Generate::CompleteBash => Shell::Bash,
        Generate::CompleteZsh => Shell::Zsh,
        Generate::CompleteFish => Shell::Fish,
    };
    let name = cmd.get_name().to_string();
    clap_complete::generate(shell, &mut cmd, name, out);
}
