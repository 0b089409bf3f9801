//! Rotation and retention of one file output's set, run by its writer thread between two
//! writes, so a rotation always falls between two whole lines.
//!
//! - **When**: by size (`max_size`, checked after each write), by time (`every`, at the next
//!   boundary in local time; at start, a file last written before the latest boundary is
//!   rotated at once), or on request (`logwell rotate`).
//! - **How**: under the set's lock, numbered generations are renamed up by one and the live
//!   file becomes `.1` (or, dated, `-YYYYMMDD[-N]`); the writer then opens a new live file.
//!   Compression is queued for the background worker ([`super::compress`]), leaving the
//!   newest generation alone with `delay_compress`.
//! - **Retention** ([`enforce`]): after every rotation and compression, the set keeps its
//!   newest `keep` generations, deletes those older than `max_age_days`, then the oldest while
//!   the set is over `max_total_size`; then the global `[retention]` limits apply across every
//!   set. The live file is never deleted.
//! - **Recovery** ([`recover`]): at start, compression temporaries left by a crash are
//!   removed, a generation present both compressed and not keeps only the compressed copy,
//!   and uncompressed generations that should be compressed are queued again.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use chrono::{
    DateTime, Datelike, Duration as ChronoDuration, Local, NaiveDate, TimeZone, Timelike,
};

use super::compress::{self, sync_dir};
use crate::config::{Every, RetentionSettings, RotationSettings};
use crate::host::fsops;
use crate::store::fileset::{self, Compression, Generation, Naming, Slot};

/// The lock that orders renames, compression and deletion within one file set. Shared by
/// every writer and the compressor, per path, for the daemon's lifetime.
pub(crate) fn lock(live: &Path) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    locks.entry(live.to_path_buf()).or_default().clone()
}

/// Global limits over every file set, and the sets they cover.
#[derive(Debug, Default)]
pub struct Retention {
    limits: Mutex<RetentionSettings>,
    sets: Mutex<BTreeSet<PathBuf>>,
}

impl Retention {
    /// Limits from the configuration.
    pub fn new(limits: RetentionSettings) -> Arc<Retention> {
        Arc::new(Retention {
            limits: Mutex::new(limits),
            sets: Mutex::default(),
        })
    }

    /// New limits after a reload.
    pub fn set_limits(&self, limits: RetentionSettings) {
        *self.limits.lock().unwrap_or_else(|e| e.into_inner()) = limits;
    }

    /// Counts a file set under the global limits.
    pub(crate) fn register(&self, live: &Path) {
        self.sets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(live.to_path_buf());
    }
}

/// The policy of a file without `[rotation]` that is rotated on request (`logwell rotate`):
/// numbered, uncompressed, nothing deleted.
pub(crate) fn on_request_only() -> RotationSettings {
    RotationSettings {
        max_size: None,
        every: None,
        at_hour: 0,
        compression: Compression::None,
        level: 3,
        delay_compress: false,
        naming: Naming::Numbered,
        keep: None,
        max_age: None,
        max_total_size: None,
    }
}

/// What started a rotation; dated names take the date of the period the lines belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// `max_size` reached, or a request: the lines are from now.
    Size,
    /// A time boundary passed: the lines are from the period that ended; the time given is
    /// in it (the boundary's last second, or the file's last write at start).
    Time(DateTime<Local>),
}

/// Renames the live file to a new generation and queues compression. The caller has written
/// everything pending and opens the new live file afterwards.
pub(crate) fn rotate(
    live: &Path,
    settings: &RotationSettings,
    retention: &Arc<Retention>,
    reason: Reason,
) -> io::Result<PathBuf> {
    let (dir, base) = fileset::split(live);
    let set_lock = lock(live);
    let rotated = {
        let _held = set_lock.lock().unwrap_or_else(|e| e.into_inner());
        let generations = fileset::list(live)?;
        let target = match settings.naming {
            Naming::Numbered => {
                // `list` is oldest (highest number) first, so no rename overwrites another.
                for g in &generations {
                    if let Slot::Numbered(n) = g.slot {
                        fsops::rename(
                            &g.path,
                            dir.join(fileset::name(&base, &Slot::Numbered(n + 1), g.compression)),
                        )?;
                    }
                }
                dir.join(fileset::name(&base, &Slot::Numbered(1), Compression::None))
            }
            Naming::Dated => {
                let when = match reason {
                    Reason::Size => Local::now(),
                    Reason::Time(t) => t,
                };
                let date = match settings.every {
                    Some(Every::Hourly) => when.format("%Y%m%d%H").to_string(),
                    _ => when.format("%Y%m%d").to_string(),
                };
                let taken = |seq: u32| {
                    let slot = Slot::Dated(date.clone(), seq);
                    generations.iter().any(|g| g.slot == slot)
                };
                let seq = (1..).find(|s| !taken(*s)).expect("a free sequence number");
                dir.join(fileset::name(
                    &base,
                    &Slot::Dated(date, seq),
                    Compression::None,
                ))
            }
        };
        fsops::rename(live, &target)?;
        sync_dir(&dir)?;
        target
    };
    tracing::info!(file = %live.display(), rotated = %rotated.display(), "rotated");
    queue_compression(live, settings, retention)?;
    enforce(live, settings, retention);
    Ok(rotated)
}

/// Queues every uncompressed generation that the policy wants compressed.
fn queue_compression(
    live: &Path,
    settings: &RotationSettings,
    retention: &Arc<Retention>,
) -> io::Result<()> {
    if settings.compression == Compression::None {
        return Ok(());
    }
    let generations = fileset::list(live)?;
    // The newest generation stays uncompressed with delay_compress.
    let newest = if settings.delay_compress {
        generations.last().map(|g| g.inode)
    } else {
        None
    };
    for g in generations {
        if g.compression == Compression::None && Some(g.inode) != newest {
            compress::enqueue(compress::Job {
                live: live.to_path_buf(),
                inode: g.inode,
                settings: settings.clone(),
                retention: retention.clone(),
            });
        }
    }
    Ok(())
}

/// Finishes what a crash interrupted, then queues compression and applies retention.
pub(crate) fn recover(
    live: &Path,
    settings: &RotationSettings,
    retention: &Arc<Retention>,
) -> io::Result<()> {
    retention.register(live);
    {
        let set_lock = lock(live);
        let _held = set_lock.lock().unwrap_or_else(|e| e.into_inner());
        for t in fileset::temporaries(live) {
            tracing::info!(file = %t.display(), "removing a compression left unfinished");
            fsops::remove_file(&t)?;
        }
        let generations = fileset::list(live)?;
        for g in &generations {
            let done = g.compression == Compression::None
                && generations
                    .iter()
                    .any(|c| c.slot == g.slot && c.compression != Compression::None);
            if done {
                tracing::info!(file = %g.path.display(), "compressed copy is complete; removing the uncompressed one");
                fsops::remove_file(&g.path)?;
            }
        }
    }
    queue_compression(live, settings, retention)?;
    enforce(live, settings, retention);
    Ok(())
}

fn delete(g: &Generation, why: &str) {
    match fsops::remove_file(&g.path) {
        Ok(()) => tracing::info!(file = %g.path.display(), why, "deleted"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(file = %g.path.display(), error = %e, "cannot delete"),
    }
}

/// Applies the set's retention, then the global limits.
pub(crate) fn enforce(live: &Path, settings: &RotationSettings, retention: &Retention) {
    {
        let set_lock = lock(live);
        let _held = set_lock.lock().unwrap_or_else(|e| e.into_inner());
        let Ok(mut generations) = fileset::list(live) else {
            return;
        };
        if let Some(keep) = settings.keep {
            while generations.len() > keep as usize {
                delete(&generations.remove(0), "keep");
            }
        }
        if let Some(max_age) = settings.max_age {
            let now = SystemTime::now();
            generations.retain(|g| {
                let old = now.duration_since(g.modified).unwrap_or_default() > max_age;
                if old {
                    delete(g, "max_age_days");
                }
                !old
            });
        }
        if let Some(max_total) = settings.max_total_size {
            let mut total: u64 = generations.iter().map(|g| g.size).sum();
            while total > max_total && !generations.is_empty() {
                let g = generations.remove(0);
                total -= g.size;
                delete(&g, "max_total_size");
            }
        }
    }
    enforce_global(retention);
}

/// `[retention]`: oldest rotated generations first, across every set, while over the limits.
fn enforce_global(retention: &Retention) {
    let limits = retention
        .limits
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if limits.max_disk_usage.is_none() && limits.min_free_space.is_none() {
        return;
    }
    let sets: Vec<PathBuf> = retention
        .sets
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect();
    let mut all: Vec<(PathBuf, Generation)> = Vec::new();
    let mut usage = 0u64;
    for live in &sets {
        usage += std::fs::metadata(live).map(|m| m.len()).unwrap_or(0);
        for g in fileset::list(live).unwrap_or_default() {
            usage += g.size;
            all.push((live.clone(), g));
        }
    }
    all.sort_by_key(|(_, g)| g.modified);
    // fsblkcnt_t and c_ulong are u64 here but u32 on 32-bit targets: the casts are needed there.
    #[allow(clippy::unnecessary_cast)]
    let free = |path: &Path| -> Option<u64> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        nix::sys::statvfs::statvfs(dir)
            .ok()
            .map(|s| s.blocks_available() as u64 * s.fragment_size() as u64)
    };
    for (live, g) in all {
        let over_usage = limits.max_disk_usage.is_some_and(|max| usage > max);
        let short_of_space = limits
            .min_free_space
            .is_some_and(|min| free(&live).is_some_and(|f| f < min));
        if !over_usage && !short_of_space {
            break;
        }
        let set_lock = lock(&live);
        let _held = set_lock.lock().unwrap_or_else(|e| e.into_inner());
        delete(
            &g,
            if over_usage {
                "max_disk_usage"
            } else {
                "min_free_space"
            },
        );
        usage = usage.saturating_sub(g.size);
    }
}

/// The first time-rotation boundary after `now`.
pub(crate) fn next_boundary(now: DateTime<Local>, every: Every, at_hour: u32) -> DateTime<Local> {
    let at = |date: NaiveDate, hour: u32| -> DateTime<Local> {
        let naive = date.and_hms_opt(hour, 0, 0).expect("a valid hour");
        Local
            .from_local_datetime(&naive)
            .earliest()
            .unwrap_or_else(|| Local.from_utc_datetime(&naive))
    };
    let today = now.date_naive();
    let candidate = match every {
        Every::Hourly => {
            let this_hour = at(today, now.hour());
            return if this_hour > now {
                this_hour
            } else {
                this_hour + ChronoDuration::hours(1)
            };
        }
        Every::Daily => at(today, at_hour),
        Every::Weekly => at(
            today - ChronoDuration::days(i64::from(today.weekday().num_days_from_monday())),
            at_hour,
        ),
        Every::Monthly => at(today.with_day(1).expect("day 1"), at_hour),
    };
    if candidate > now {
        return candidate;
    }
    match every {
        Every::Hourly => unreachable!(),
        Every::Daily => at(today + ChronoDuration::days(1), at_hour),
        Every::Weekly => at(candidate.date_naive() + ChronoDuration::days(7), at_hour),
        Every::Monthly => {
            let first = candidate.date_naive();
            let next = if first.month() == 12 {
                NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
            };
            at(next.expect("a valid date"), at_hour)
        }
    }
}

/// The latest boundary at or before `now`.
pub(crate) fn last_boundary(now: DateTime<Local>, every: Every, at_hour: u32) -> DateTime<Local> {
    let back = match every {
        Every::Hourly => ChronoDuration::hours(1),
        Every::Daily => ChronoDuration::days(1),
        Every::Weekly => ChronoDuration::days(7),
        Every::Monthly => ChronoDuration::days(31),
    };
    let mut b = next_boundary(now - back - ChronoDuration::seconds(1), every, at_hour);
    loop {
        let n = next_boundary(b, every, at_hour);
        if n > now {
            return b;
        }
        b = n;
    }
}

/// How long until `t`, for a tokio timer.
pub(crate) fn until(t: DateTime<Local>) -> Duration {
    (t - Local::now()).to_std().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Local> {
        Local
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .earliest()
            .unwrap()
    }

    #[test]
    fn boundaries() {
        let now = local(2026, 11, 21, 9, 41); // a Saturday
        assert_eq!(
            next_boundary(now, Every::Hourly, 0),
            local(2026, 11, 21, 10, 0)
        );
        assert_eq!(
            next_boundary(now, Every::Daily, 0),
            local(2026, 11, 22, 0, 0)
        );
        assert_eq!(
            next_boundary(now, Every::Daily, 12),
            local(2026, 11, 21, 12, 0)
        );
        assert_eq!(
            next_boundary(now, Every::Weekly, 0),
            local(2026, 11, 23, 0, 0)
        );
        assert_eq!(
            next_boundary(now, Every::Monthly, 0),
            local(2026, 12, 1, 0, 0)
        );
        assert_eq!(
            next_boundary(local(2026, 12, 15, 0, 0), Every::Monthly, 3),
            local(2027, 1, 1, 3, 0)
        );
        assert_eq!(
            last_boundary(now, Every::Hourly, 0),
            local(2026, 11, 21, 9, 0)
        );
        assert_eq!(
            last_boundary(now, Every::Daily, 0),
            local(2026, 11, 21, 0, 0)
        );
        assert_eq!(
            last_boundary(now, Every::Daily, 12),
            local(2026, 11, 20, 12, 0)
        );
        assert_eq!(
            last_boundary(now, Every::Weekly, 0),
            local(2026, 11, 16, 0, 0)
        );
        assert_eq!(
            last_boundary(now, Every::Monthly, 0),
            local(2026, 11, 1, 0, 0)
        );
        assert_eq!(
            last_boundary(local(2026, 3, 1, 0, 30), Every::Monthly, 0),
            local(2026, 3, 1, 0, 0)
        );
    }

    fn settings() -> RotationSettings {
        RotationSettings {
            max_size: Some(10),
            every: None,
            at_hour: 0,
            compression: Compression::Zstd,
            level: 3,
            delay_compress: false,
            naming: Naming::Numbered,
            keep: Some(3),
            max_age: None,
            max_total_size: None,
        }
    }

    fn names(live: &Path) -> Vec<String> {
        fileset::list(live)
            .unwrap()
            .iter()
            .map(|g| g.path.file_name().unwrap().to_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn numbered_rotation_shifts_compresses_and_keeps() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("syslog");
        let retention = Retention::new(RetentionSettings::default());
        let mut s = settings();
        s.compression = Compression::None;
        for n in 0..5 {
            std::fs::write(&live, format!("generation {n}\n")).unwrap();
            rotate(&live, &s, &retention, Reason::Size).unwrap();
        }
        assert_eq!(names(&live), ["syslog.3", "syslog.2", "syslog.1"]);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("syslog.1")).unwrap(),
            "generation 4\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("syslog.3")).unwrap(),
            "generation 2\n"
        );
    }

    #[test]
    fn recovery_keeps_a_complete_compressed_copy_and_drops_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("syslog");
        std::fs::write(dir.path().join("syslog.2"), "two\n").unwrap();
        compress::write_compressed(
            &dir.path().join("syslog.2.zst"),
            b"two\n",
            Compression::Zstd,
        )
        .unwrap();
        std::fs::write(dir.path().join(".syslog.77.zst.tmp"), "half").unwrap();
        let mut s = settings();
        s.compression = Compression::None;
        recover(&live, &s, &Retention::new(RetentionSettings::default())).unwrap();
        assert_eq!(names(&live), ["syslog.2.zst"]);
        assert!(!dir.path().join(".syslog.77.zst.tmp").exists());
    }
}
