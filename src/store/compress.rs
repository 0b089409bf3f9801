//! Background compression of rotated generations: one worker thread for the whole daemon, so
//! compression never runs on an input task or a writer.
//!
//! A job names a generation by its set and inode, not by its name: numbered rotation may
//! rename it (`syslog.1` → `syslog.2`) while it is being compressed. The worker:
//! 1. finds the generation's current name (under the set's lock), opens it;
//! 2. compresses it into a hidden temporary beside it (`.syslog.INODE.zst.tmp`), `fsync`s it,
//!    and gives it the original's modification time;
//! 3. under the lock again, finds the current name once more, renames the temporary to that
//!    name plus `.zst`/`.gz`, `fsync`s the directory, and only then removes the uncompressed
//!    generation.
//!
//! A crash at any point leaves either the uncompressed generation (step 1–2: the temporary
//! is removed and the work redone at the next start) or both, with the compressed one
//! complete (step 3: recovery removes the uncompressed one). No generation is lost, and none
//! is ever half-written under its final name. See [`super::rotate::recover`].

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

use super::rotate::{self, Retention};
use crate::config::RotationSettings;
use crate::host::fsops;
use crate::store::fileset::{self, Compression, Generation};

/// One generation to compress.
pub(crate) struct Job {
    /// The live file of its set.
    pub(crate) live: PathBuf,
    /// The generation's inode.
    pub(crate) inode: u64,
    /// The set's policy (compression, level, retention after).
    pub(crate) settings: RotationSettings,
    /// Global limits, enforced after the job.
    pub(crate) retention: Arc<Retention>,
}

struct Worker {
    tx: mpsc::Sender<Job>,
    queued: Arc<Mutex<HashSet<(PathBuf, u64)>>>,
}

static WORKER: OnceLock<Worker> = OnceLock::new();

fn worker() -> &'static Worker {
    WORKER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let queued: Arc<Mutex<HashSet<(PathBuf, u64)>>> = Arc::default();
        let q = queued.clone();
        std::thread::Builder::new()
            .name("compress".into())
            .spawn(move || {
                for job in rx {
                    if let Err(e) = compress(&job) {
                        tracing::error!(file = %job.live.display(), error = %e, "compression failed; the generation stays uncompressed and is retried at the next rotation");
                    }
                    rotate::enforce(&job.live, &job.settings, &job.retention);
                    q.lock().unwrap_or_else(|e| e.into_inner()).remove(&(job.live.clone(), job.inode));
                }
            })
            .expect("spawn the compression thread");
        Worker { tx, queued }
    })
}

/// Queues a generation for compression, once.
pub(crate) fn enqueue(job: Job) {
    let w = worker();
    let key = (job.live.clone(), job.inode);
    if w.queued
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key)
    {
        let _ = w.tx.send(job);
    }
}

/// Whether a compression job is queued or running (for tests and shutdown).
pub fn busy() -> bool {
    WORKER.get().is_some_and(|w| {
        !w.queued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    })
}

/// The uncompressed generation with this inode, under its current name.
fn find(live: &Path, inode: u64) -> io::Result<Option<Generation>> {
    Ok(fileset::list(live)?
        .into_iter()
        .find(|g| g.inode == inode && g.compression == Compression::None))
}

fn compress(job: &Job) -> io::Result<()> {
    let lock = rotate::lock(&job.live);
    let (dir, base) = fileset::split(&job.live);
    let compression = job.settings.compression;
    let (source, modified) = {
        let _held = lock.lock().unwrap_or_else(|e| e.into_inner());
        let Some(g) = find(&job.live, job.inode)? else {
            return Ok(());
        };
        (fsops::open_read(&g.path)?, g.modified)
    };
    let temp = dir.join(fileset::temp_name(&format!(
        "{base}.{}{}",
        job.inode,
        compression.extension()
    )));
    let written = (|| -> io::Result<File> {
        // Same owner and mode as the original from the start: a log readable only by `adm`
        // must not become readable by all when compressed.
        use std::os::unix::fs::MetadataExt;
        let meta = source.metadata()?;
        let root = fsops::privileged();
        let out = fsops::create_new(
            &temp,
            &fsops::Create {
                mode: meta.mode() & 0o7777,
                owner: root.then(|| meta.uid()),
                group: root.then(|| meta.gid()),
            },
        )?;
        let mut input = BufReader::with_capacity(256 * 1024, source);
        let mut output = BufWriter::with_capacity(256 * 1024, out);
        match compression {
            Compression::Zstd => {
                zstd::stream::copy_encode(&mut input, &mut output, job.settings.level)?
            }
            Compression::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(
                    &mut output,
                    flate2::Compression::new(job.settings.level as u32),
                );
                io::copy(&mut input, &mut enc)?;
                enc.finish()?;
            }
            Compression::None => return Err(io::Error::other("nothing to compress")),
        }
        let out = output.into_inner().map_err(|e| e.into_error())?;
        out.sync_all()?;
        fsops::set_modified(&out, &temp, modified)?;
        Ok(out)
    })();
    if let Err(e) = written {
        let _ = fsops::remove_file(&temp);
        return Err(e);
    }
    let _held = lock.lock().unwrap_or_else(|e| e.into_inner());
    let Some(g) = find(&job.live, job.inode)? else {
        // Deleted meanwhile (retention): nothing to keep.
        let _ = fsops::remove_file(&temp);
        return Ok(());
    };
    let final_path = dir.join(fileset::name(&base, &g.slot, compression));
    fsops::rename(&temp, &final_path)?;
    sync_dir(&dir)?;
    fsops::remove_file(&g.path)?;
    sync_dir(&dir)?;
    tracing::debug!(file = %final_path.display(), "compressed");
    Ok(())
}

/// Makes renames and removals in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `data` compressed to `path` (for tests and tools that build file sets).
pub fn write_compressed(path: &Path, data: &[u8], compression: Compression) -> io::Result<()> {
    let mut f = File::create(path)?;
    match compression {
        Compression::Zstd => f.write_all(&zstd::encode_all(data, 3)?)?,
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(f, flate2::Compression::default());
            enc.write_all(data)?;
            enc.finish()?;
        }
        Compression::None => f.write_all(data)?,
    }
    Ok(())
}
