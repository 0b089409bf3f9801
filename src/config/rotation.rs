//! Rotation, compression and retention settings: `[rotation]` (the default of every file
//! output), `[output.NAME.rotation]` (per file, key by key over the default) and
//! `[retention]` (limits over all files together). Validation here; the work is in
//! `store::rotate`.

use std::time::Duration;

use super::check::Check;
use super::raw::{RawRetention, RawRotation};
use crate::store::fileset::{Compression, Naming};

/// When a file is rotated by time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Every {
    /// At the start of every hour.
    Hourly,
    /// Every day at `at_hour`.
    Daily,
    /// Every Monday at `at_hour`.
    Weekly,
    /// On the 1st of every month at `at_hour`.
    Monthly,
}

/// The rotation policy of one file output.
#[derive(Clone, Debug, PartialEq)]
pub struct RotationSettings {
    /// Rotate when the live file reaches this size.
    pub max_size: Option<u64>,
    /// Rotate by time.
    pub every: Option<Every>,
    /// Local hour of day for daily, weekly and monthly rotation.
    pub at_hour: u32,
    /// How rotated generations are compressed.
    pub compression: Compression,
    /// zstd level (1..=19, default 3) or gzip level (1..=9, default 6).
    pub level: i32,
    /// Leave the newest rotated generation uncompressed (logrotate's `delaycompress`).
    pub delay_compress: bool,
    /// How rotated generations are named.
    pub naming: Naming,
    /// Rotated generations kept (the live file is not counted).
    pub keep: Option<u32>,
    /// Rotated generations older than this are deleted.
    pub max_age: Option<Duration>,
    /// The oldest rotated generations are deleted while the set's rotated files exceed this.
    pub max_total_size: Option<u64>,
}

/// `[retention]`: limits over every file output together, as journald has.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RetentionSettings {
    /// Rotated generations are deleted, oldest first, while all files take more than this.
    pub max_disk_usage: Option<u64>,
    /// Rotated generations are deleted, oldest first, while the file system has less free.
    pub min_free_space: Option<u64>,
}

/// One `[rotation]` table, validated, every key still optional so that a per-file table can
/// be laid over the default.
#[derive(Clone, Debug, Default)]
pub(crate) struct PartialRotation {
    max_size: Option<u64>,
    every: Option<Option<Every>>,
    at_hour: Option<u32>,
    compression: Option<Compression>,
    level: Option<i32>,
    delay_compress: Option<bool>,
    naming: Option<Naming>,
    keep: Option<u32>,
    max_age: Option<Duration>,
    max_total_size: Option<u64>,
    /// Another program (logrotate) rotates the file.
    external: Option<bool>,
}

/// Parses `"100M"`, `"1.5G"`, `"512K"`, `"1048576"` or a bare integer into bytes (powers of
/// 1024; a trailing `B` or `iB` is allowed).
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (number, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    let factor: u64 = match unit.to_ascii_uppercase().as_str() {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    let value: f64 = number.trim().parse().ok()?;
    (value.is_finite() && value > 0.0)
        .then_some((value * factor as f64) as u64)
        .filter(|v| *v > 0)
}

/// Validates one rotation table.
pub(crate) fn from_raw(check: &mut Check<'_>, raw: &RawRotation) -> PartialRotation {
    let every = check.choice(
        &raw.every,
        "every",
        &[
            ("hourly", Some(Every::Hourly)),
            ("daily", Some(Every::Daily)),
            ("weekly", Some(Every::Weekly)),
            ("monthly", Some(Every::Monthly)),
            ("never", None),
        ],
    );
    let compression = check.choice(
        &raw.compress,
        "compress",
        &[
            ("zstd", Compression::Zstd),
            ("gzip", Compression::Gzip),
            ("none", Compression::None),
        ],
    );
    let level = check
        .range(&raw.compress_level, "compress_level", 1, 19)
        .map(|l| l as i32);
    if let (Some(Compression::Gzip), Some(l), Some(v)) = (compression, level, &raw.compress_level) {
        if l > 9 {
            check.err(
                v.span(),
                "gzip levels go from 1 to 9",
                "use a level from 1 to 9, or compress = \"zstd\"",
            );
        }
    }
    PartialRotation {
        max_size: check.size(&raw.max_size, "max_size"),
        every,
        at_hour: check
            .range(&raw.at_hour, "at_hour", 0, 23)
            .map(|h| h as u32),
        compression,
        level,
        delay_compress: raw.delay_compress.as_ref().map(|b| *b.get_ref()),
        naming: check.choice(
            &raw.naming,
            "naming",
            &[("numbered", Naming::Numbered), ("dated", Naming::Dated)],
        ),
        keep: check.range(&raw.keep, "keep", 0, 100_000).map(|k| k as u32),
        max_age: check
            .range(&raw.max_age_days, "max_age_days", 1, 100_000)
            .map(|d| Duration::from_secs(d as u64 * 86_400)),
        max_total_size: check.size(&raw.max_total_size, "max_total_size"),
        external: check.choice(
            &raw.rotated_by,
            "rotated_by",
            &[("logwell", false), ("logrotate", true)],
        ),
    }
}

/// Validates `[retention]`.
pub(crate) fn retention_from_raw(check: &mut Check<'_>, raw: &RawRetention) -> RetentionSettings {
    RetentionSettings {
        max_disk_usage: check.size(&raw.max_disk_usage, "max_disk_usage"),
        min_free_space: check.size(&raw.min_free_space, "min_free_space"),
    }
}

impl PartialRotation {
    /// `self` with every key `over` sets replaced.
    pub(crate) fn overlay(&self, over: &PartialRotation) -> PartialRotation {
        PartialRotation {
            max_size: over.max_size.or(self.max_size),
            every: over.every.or(self.every),
            at_hour: over.at_hour.or(self.at_hour),
            compression: over.compression.or(self.compression),
            level: over.level.or(self.level),
            delay_compress: over.delay_compress.or(self.delay_compress),
            naming: over.naming.or(self.naming),
            keep: over.keep.or(self.keep),
            max_age: over.max_age.or(self.max_age),
            max_total_size: over.max_total_size.or(self.max_total_size),
            external: over.external.or(self.external),
        }
    }

    /// `rotated_by = "logrotate"`.
    pub(crate) fn external(&self) -> bool {
        self.external == Some(true)
    }

    /// The policy, or `None` when nothing asks for rotation or retention.
    pub(crate) fn settle(&self) -> Option<RotationSettings> {
        if self.external == Some(true) {
            return None;
        }
        let every = self.every.flatten();
        let retention =
            self.keep.is_some() || self.max_age.is_some() || self.max_total_size.is_some();
        if self.max_size.is_none() && every.is_none() && !retention {
            return None;
        }
        let compression = self.compression.unwrap_or(Compression::Zstd);
        Some(RotationSettings {
            max_size: self.max_size,
            every,
            at_hour: self.at_hour.unwrap_or(0),
            compression,
            level: self
                .level
                .unwrap_or(if compression == Compression::Gzip {
                    6
                } else {
                    3
                })
                .min(if compression == Compression::Gzip {
                    9
                } else {
                    19
                }),
            delay_compress: self.delay_compress.unwrap_or(false),
            naming: self.naming.unwrap_or(Naming::Numbered),
            keep: self.keep,
            max_age: self.max_age,
            max_total_size: self.max_total_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100M"), Some(100 << 20));
        assert_eq!(parse_size("1.5G"), Some(3 << 29));
        assert_eq!(parse_size("512KiB"), Some(512 << 10));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("10 MB"), Some(10 << 20));
        for bad in ["", "M", "-1M", "12Q", "0", "nanM"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }
}
