//! Configuration errors: each names the file, the line and column, what is wrong and how to
//! fix it. Validation collects every error before reporting, so one run of
//! `logwelld --check-config` shows them all.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in one configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line, 0 when the problem is not tied to a place (a missing file).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )?;
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        if self.0.len() > 1 {
            write!(f, "\n{} errors in the configuration", self.0.len())?;
        }
        Ok(())
    }
}

/// The text of one configuration file, to turn byte offsets into lines and columns.
pub(crate) struct SourceFile<'a> {
    pub(crate) path: &'a Path,
    pub(crate) text: &'a str,
}

impl SourceFile<'_> {
    /// An error at the start of `span` (the whole file when `None`).
    pub(crate) fn error(
        &self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ConfigError {
        let (line, column) = match span {
            Some(span) => line_col(self.text, span.start),
            None => (0, 0),
        };
        ConfigError {
            file: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
            hint,
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_from_one() {
        assert_eq!(line_col("a = 1\nbb = 2\n", 0), (1, 1));
        assert_eq!(line_col("a = 1\nbb = 2\n", 6), (2, 1));
        assert_eq!(line_col("a = 1\nbb = 2\n", 11), (2, 6));
    }

    #[test]
    fn display_shows_place_and_hint() {
        let e = ConfigError {
            file: "/etc/x.toml".into(),
            line: 3,
            column: 7,
            message: "bad".into(),
            hint: Some("do this".into()),
        };
        assert_eq!(e.to_string(), "/etc/x.toml:3:7: bad\n  hint: do this");
    }
}
