use super::*;

fn settings(dir: &Path, memory_bytes: usize) -> QueueSettings {
    QueueSettings {
        dir: Some(dir.to_path_buf()),
        memory_bytes,
        max_disk_bytes: 1 << 30,
        segment_bytes: 4096,
        fsync: Fsync::None,
    }
}

fn encode_all(msgs: impl IntoIterator<Item = String>) -> (Vec<u8>, u64) {
    let mut buf = Vec::new();
    let mut n = 0;
    for m in msgs {
        record::encode(m.as_bytes(), &mut buf);
        n += 1;
    }
    (buf, n)
}

fn push_range(q: &mut Queue, range: std::ops::Range<u32>) -> Pushed {
    let (buf, n) = encode_all(range.map(|i| format!("message {i}")));
    q.push(&buf, n)
}

/// Reads and acknowledges everything, in batches of `per`.
fn drain(q: &mut Queue, per: usize) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let mut b = Batch::default();
        if q.read(&mut b, per, 1 << 20).unwrap() == 0 {
            break;
        }
        out.extend(b.records().map(|r| String::from_utf8(r.to_vec()).unwrap()));
        q.ack(&b).unwrap();
    }
    out
}

fn expected(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("message {i}")).collect()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

#[test]
fn memory_then_disk_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (mut q, rec) = Queue::open(settings(dir.path(), 2000)).unwrap();
    assert_eq!(rec.records, 0);
    assert_eq!(push_range(&mut q, 0..50), Pushed::Memory);
    assert_eq!(push_range(&mut q, 50..600), Pushed::Disk);
    // Once something is on disk, later records go there too, even if memory had room.
    assert_eq!(push_range(&mut q, 600..601), Pushed::Disk);
    assert_eq!(q.len(), 601);
    assert_eq!(q.disk_records(), 551);
    assert!(segments(dir.path()).len() > 1, "small segments roll over");
    assert_eq!(drain(&mut q, 7), expected(0..601));
    assert_eq!(q.len(), 0);
    assert_eq!(q.disk_records(), 0);
    assert_eq!(
        segments(dir.path()),
        Vec::<PathBuf>::new(),
        "delivered segments are removed"
    );
    // Empty again: back to memory.
    assert_eq!(push_range(&mut q, 601..602), Pushed::Memory);
}

#[test]
fn rewind_hands_out_unacknowledged_records_again() {
    let dir = tempfile::tempdir().unwrap();
    let (mut q, _) = Queue::open(settings(dir.path(), 1000)).unwrap();
    push_range(&mut q, 0..100);
    let mut first = Batch::default();
    q.read(&mut first, 10, 1 << 20).unwrap();
    let mut second = Batch::default();
    q.read(&mut second, 10, 1 << 20).unwrap();
    q.ack(&first).unwrap();
    assert_eq!(q.in_flight(), 10);
    assert_eq!(q.rewind(), 10);
    assert_eq!(drain(&mut q, 13), expected(10..100));
}

#[test]
fn a_clean_close_keeps_memory_and_disk_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (mut q, _) = Queue::open(settings(dir.path(), 1500)).unwrap();
    push_range(&mut q, 0..40);
    push_range(&mut q, 40..300);
    let mut b = Batch::default();
    q.read(&mut b, 5, 1 << 20).unwrap();
    q.ack(&b).unwrap();
    // Read but not acknowledged: kept.
    let mut unacked = Batch::default();
    q.read(&mut unacked, 5, 1 << 20).unwrap();
    assert_eq!(q.close().unwrap(), 295);
    let (mut q, rec) = Queue::open(settings(dir.path(), 1500)).unwrap();
    assert_eq!(rec.records, 295);
    assert!(rec.damage.is_empty(), "{:?}", rec.damage);
    assert_eq!(drain(&mut q, 11), expected(5..300));
}

#[test]
fn a_crash_keeps_what_was_on_disk_and_the_acknowledged_position() {
    let dir = tempfile::tempdir().unwrap();
    let (mut q, _) = Queue::open(settings(dir.path(), 0)).unwrap();
    push_range(&mut q, 0..500);
    let mut b = Batch::default();
    q.read(&mut b, 123, 1 << 20).unwrap();
    q.ack(&b).unwrap();
    // No close: as after kill -9.
    drop(q);
    let (mut q, rec) = Queue::open(settings(dir.path(), 0)).unwrap();
    assert_eq!(rec.records, 377);
    assert_eq!(drain(&mut q, 50), expected(123..500));
}

#[test]
fn a_torn_tail_is_cut_at_the_last_whole_record() {
    let dir = tempfile::tempdir().unwrap();
    let (mut q, _) = Queue::open(settings(dir.path(), 0)).unwrap();
    push_range(&mut q, 0..10);
    drop(q);
    let seg = &segments(dir.path())[0];
    let len = std::fs::metadata(seg).unwrap().len();
    // Half of the last record ("message 9" is 9 bytes + 8 of header).
    let f = OpenOptions::new().write(true).open(seg).unwrap();
    f.set_len(len - 5).unwrap();
    drop(f);
    let (mut q, rec) = Queue::open(settings(dir.path(), 0)).unwrap();
    assert_eq!(rec.records, 9);
    assert_eq!(rec.damage.len(), 1);
    assert_eq!(rec.damage[0].kind, DamageKind::TornTail);
    assert_eq!(rec.damage[0].cut_bytes, 12);
    assert_eq!(std::fs::metadata(seg).unwrap().len(), len - 17);
    assert_eq!(drain(&mut q, 4), expected(0..9));
    // New records after the cut are whole.
    push_range(&mut q, 9..12);
    drop(q);
    let (mut q, rec) = Queue::open(settings(dir.path(), 0)).unwrap();
    assert!(rec.damage.is_empty());
    assert_eq!(drain(&mut q, 4), expected(9..12));
}

#[test]
fn a_corrupt_segment_is_reported_and_the_others_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (mut q, _) = Queue::open(settings(dir.path(), 0)).unwrap();
    for i in 0..20 {
        push_range(&mut q, i * 100..(i + 1) * 100);
    }
    drop(q);
    let segs = segments(dir.path());
    assert!(segs.len() >= 4, "{segs:?}");
    // Garbage appended to one, a flipped byte in the middle of another, no magic in a third.
    let mut f = OpenOptions::new().append(true).open(&segs[1]).unwrap();
    f.write_all(&[0xab; 100]).unwrap();
    let mut bytes = std::fs::read(&segs[2]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&segs[2], &bytes).unwrap();
    std::fs::write(&segs[3], b"not a segment at all").unwrap();
    let (mut q, rec) = Queue::open(settings(dir.path(), 0)).unwrap();
    assert_eq!(rec.damage.len(), 3, "{:?}", rec.damage);
    assert!(matches!(rec.damage[0].kind, DamageKind::Corrupt(_)));
    assert_eq!(rec.damage[0].cut_bytes, 100);
    assert!(matches!(rec.damage[1].kind, DamageKind::Corrupt(_)));
    assert!(rec.damage[1].resumed_records > 0, "{:?}", rec.damage[1]);
    assert_eq!(rec.damage[2].kind, DamageKind::NotASegment);
    assert!(segs[3].with_extension("seg.corrupt").exists());
    let got = drain(&mut q, 64);
    // Every record of the undamaged segments, in order; all but one of the one with a
    // flipped byte; what came before the garbage.
    let mut sorted = got.clone();
    sorted.sort_by_key(|m| m[8..].parse::<u32>().unwrap());
    assert_eq!(sorted, got, "in order");
    assert!(got.len() > 1000 && got.len() < 2000, "{}", got.len());
    assert_eq!(got.last().unwrap(), "message 1999");
    assert_eq!(got[0], "message 0");
}

#[test]
fn the_disk_bound_refuses_pushes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), 0);
    s.max_disk_bytes = 3000;
    let (mut q, _) = Queue::open(s).unwrap();
    let mut n = 0;
    while push_range(&mut q, n..n + 10) == Pushed::Disk {
        n += 10;
        assert!(n < 10_000);
    }
    assert!(q.disk_bytes() <= 3000);
    let mut b = Batch::default();
    q.read(&mut b, 1000, 1 << 20).unwrap();
    q.ack(&b).unwrap();
    assert_eq!(push_range(&mut q, n..n + 10), Pushed::Disk);
}

#[test]
fn memory_only_refuses_when_full() {
    let (mut q, _) = Queue::open(QueueSettings {
        dir: None,
        memory_bytes: 500,
        max_disk_bytes: 0,
        segment_bytes: 0,
        fsync: Fsync::None,
    })
    .unwrap();
    assert_eq!(push_range(&mut q, 0..10), Pushed::Memory);
    assert_eq!(push_range(&mut q, 10..100), Pushed::Full);
    assert_eq!(drain(&mut q, 3), expected(0..10));
}

/// A second instance (the action restarted by a reload) waits for the lock until the first
/// closed, then finds what the first kept.
#[test]
fn a_second_opener_waits_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut first, _) = Queue::open(settings(dir.path(), 1000)).unwrap();
    push_range(&mut first, 0..10);
    let (tx, rx) = std::sync::mpsc::channel();
    let path = dir.path().to_path_buf();
    let second = std::thread::spawn(move || {
        let opened = Queue::open(settings(&path, 1000)).unwrap();
        tx.send(()).unwrap();
        opened
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "opened while the first holds the lock"
    );
    first.close().unwrap();
    let (mut q, rec) = second.join().unwrap();
    assert_eq!(rec.records, 10);
    assert_eq!(drain(&mut q, 4), expected(0..10));
}

/// Pushes, reads, acknowledgements and rewinds interleaved over memory parts and small
/// segments: the acknowledged records, in order, are every record once.
#[test]
fn interleaved_pushes_reads_acks_and_rewinds_deliver_everything_once_in_order() {
    for (memory, seed) in [(0usize, 1u64), (3000, 2), (1 << 20, 3), (700, 4)] {
        let dir = tempfile::tempdir().unwrap();
        let (mut q, _) = Queue::open(settings(dir.path(), memory)).unwrap();
        let mut rng = seed;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut pushed = 0u32;
        let mut acked = Vec::new();
        let mut in_flight: std::collections::VecDeque<Batch> = Default::default();
        for _ in 0..3000 {
            match next() % 6 {
                0 | 1 => {
                    let n = (next() % 40) as u32 + 1;
                    if push_range(&mut q, pushed..pushed + n) != Pushed::Full {
                        pushed += n;
                    }
                }
                2 | 3 => {
                    let mut b = Batch::default();
                    if q.read(&mut b, (next() % 30) as usize + 1, 1 << 20).unwrap() > 0 {
                        in_flight.push_back(b);
                    }
                }
                4 => {
                    if let Some(b) = in_flight.pop_front() {
                        q.ack(&b).unwrap();
                        acked.extend(b.records().map(|r| String::from_utf8(r.to_vec()).unwrap()));
                    }
                }
                _ => {
                    if next() % 8 == 0 {
                        q.rewind();
                        in_flight.clear();
                    }
                }
            }
        }
        for b in in_flight.drain(..) {
            q.ack(&b).unwrap();
            acked.extend(b.records().map(|r| String::from_utf8(r.to_vec()).unwrap()));
        }
        acked.extend(drain(&mut q, 17));
        let want = expected(0..pushed);
        let first_diff = acked.iter().zip(&want).position(|(a, b)| a != b);
        assert!(
            first_diff.is_none() && acked.len() == want.len(),
            "memory {memory}: {} acknowledged of {}, first difference at {first_diff:?}: {:?}",
            acked.len(),
            want.len(),
            first_diff.map(|i| (&acked[i.saturating_sub(2)..i + 2], &want[i])),
        );
        assert_eq!(q.len(), 0);
    }
}

/// Every fsync policy keeps what was pushed across a close and an open.
#[test]
fn every_fsync_policy_keeps_the_records() {
    for fsync in [
        Fsync::Batch,
        Fsync::Interval(Duration::from_millis(1)),
        Fsync::None,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path(), 100);
        s.fsync = fsync;
        let (mut q, _) = Queue::open(s.clone()).unwrap();
        push_range(&mut q, 0..300);
        std::thread::sleep(Duration::from_millis(2));
        q.sync_if_due().unwrap();
        push_range(&mut q, 300..400);
        q.close().unwrap();
        let (mut q, rec) = Queue::open(s).unwrap();
        assert_eq!(rec.records, 400, "{fsync:?}");
        assert_eq!(drain(&mut q, 99), expected(0..400), "{fsync:?}");
    }
}

/// A tmpfs of `size` mounted on a fresh temporary directory, unmounted when dropped; `None`
/// (with a note) where mounting is not allowed (not root).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: cannot mount a tmpfs (needs root) to fill a disk");
            return None;
        }
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes a file until the file system is full (ENOSPC).
fn fill(path: &Path) {
    let mut f = File::create(path).unwrap();
    let block = vec![0u8; 4096];
    loop {
        match f.write(&block) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
}

/// Issue 24 item 5: a disk full before `max_disk_bytes` is not a full queue. The records
/// go to memory up to `memory_bytes`, then are refused as `Dropped` (never `Full`, which
/// would hold every input back), and once the disk has room again it is taken again: what
/// was taken is delivered in order, across a clean close.
#[test]
fn a_failing_disk_keeps_memory_then_drops_and_recovers() {
    let Some(fs) = Tmpfs::mount("256k") else {
        return;
    };
    let qdir = fs.path().join("q");
    let (mut q, _) = Queue::open(settings(&qdir, 1500)).unwrap();
    let mut taken: Vec<String> = Vec::new();
    let mut n = 0u32;
    let mut push_one = |q: &mut Queue, taken: &mut Vec<String>| {
        let (buf, k) = encode_all([format!("message {n}")]);
        let r = q.push(&buf, k);
        if matches!(r, Pushed::Memory | Pushed::Disk) {
            taken.push(format!("message {n}"));
        }
        n += 1;
        r
    };
    // Memory, then a segment.
    while push_one(&mut q, &mut taken) == Pushed::Memory {}
    assert!(q.disk_records() > 0);
    for _ in 0..20 {
        assert_eq!(push_one(&mut q, &mut taken), Pushed::Disk);
    }
    assert!(q.take_events().is_empty());
    // Deliver the memory part: room in memory.
    let mut delivered = Vec::new();
    let mut b = Batch::default();
    q.read(&mut b, 10_000, 1 << 20).unwrap();
    delivered.extend(b.records().map(|r| String::from_utf8(r.to_vec()).unwrap()));
    q.ack(&b).unwrap();
    assert!(delivered.len() > 10);

    let filler = fs.path().join("filler");
    fill(&filler);
    // The disk fails: memory takes what it can (after the segment, in order) ...
    let mut memory = 0;
    loop {
        match push_one(&mut q, &mut taken) {
            // The last page of the segment may still have room.
            Pushed::Disk if !q.disk_failing() => {}
            Pushed::Memory => memory += 1,
            Pushed::Dropped => break,
            other => panic!("a failing disk answered {other:?}"),
        }
        assert!(taken.len() < 100_000, "memory never filled");
    }
    assert!(memory > 10, "memory took {memory} records");
    assert!(q.disk_failing());
    let events = q.take_events();
    assert_eq!(events.len(), 1, "{events:?}");
    match &events[0] {
        DiskEvent::Failed(QueueError::Io { source, .. }) => {
            assert_eq!(source.raw_os_error(), Some(libc::ENOSPC), "{source}")
        }
        other => panic!("{other:?}"),
    }
    // ... then refuses, for the caller to drop.
    assert_eq!(push_one(&mut q, &mut taken), Pushed::Dropped);
    let leftovers: Vec<_> = std::fs::read_dir(&qdir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| std::fs::metadata(qdir.join(n)).unwrap().len() == 0 && n != "lock")
        .collect();
    assert!(leftovers.is_empty(), "empty files left: {leftovers:?}");

    // Room again: the disk is taken again (tried every DISK_RETRY).
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + DISK_RETRY * 5;
    loop {
        match push_one(&mut q, &mut taken) {
            Pushed::Disk => break,
            Pushed::Dropped => {}
            other => panic!("{other:?}"),
        }
        assert!(Instant::now() < deadline, "the disk was not taken again");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!q.disk_failing());
    assert!(matches!(q.take_events()[..], [DiskEvent::Recovered]));
    for _ in 0..20 {
        assert_eq!(push_one(&mut q, &mut taken), Pushed::Disk);
    }

    // Disk, memory, disk: all of it, in order, after a clean close.
    let kept = q.close().unwrap();
    assert_eq!(kept + delivered.len() as u64, taken.len() as u64);
    let (mut q, rec) = Queue::open(settings(&qdir, 1500)).unwrap();
    assert!(rec.damage.is_empty(), "{:?}", rec.damage);
    delivered.extend(drain(&mut q, 7));
    assert_eq!(delivered, taken);
    drop(q);
}

/// Issue 24 item 10: a crash after a clean stop wrote its memory records to a segment and
/// before the new checkpoint reached the disk must not read that segment as acknowledged,
/// even when the checkpoint on disk is the one a previous run left (this run's writes of it
/// were not yet synced when the machine went down).
#[test]
fn a_crash_between_the_memory_write_and_the_checkpoint_at_close_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A first run delivers a few segments: its checkpoint points past them.
    let (mut q, _) = Queue::open(settings(dir.path(), 0)).unwrap();
    for i in 0..10 {
        push_range(&mut q, i * 100..(i + 1) * 100);
    }
    assert!(segments(dir.path()).len() > 2);
    assert_eq!(drain(&mut q, 100), expected(0..1000));
    q.close().unwrap();
    let old_checkpoint = std::fs::read(dir.path().join("ack")).unwrap();
    // The next run keeps its records in memory, and stops.
    let (mut q, _) = Queue::open(settings(dir.path(), 1 << 20)).unwrap();
    assert_eq!(push_range(&mut q, 1000..1100), Pushed::Memory);
    q.close_then_crash_before_checkpoint();
    assert_eq!(segments(dir.path()).len(), 1, "the memory run is on disk");
    // The machine went down: only the first run's checkpoint is on the disk.
    std::fs::write(dir.path().join("ack"), &old_checkpoint).unwrap();
    let (mut q, rec) = Queue::open(settings(dir.path(), 1 << 20)).unwrap();
    assert_eq!(rec.records, 100);
    assert_eq!(drain(&mut q, 30), expected(1000..1100));
}

/// Where the record holding payload `msg` starts in a segment file.
fn offset_of(bytes: &[u8], msg: &str) -> usize {
    let mut at = SEGMENT_MAGIC.len();
    loop {
        match record::decode(&bytes[at..]) {
            Decoded::Record { payload, .. } if payload == msg.as_bytes() => return at,
            Decoded::Record { len, .. } => at += len,
            other => panic!("{other:?} at {at}"),
        }
    }
}

/// Issue 24 item 10: one damaged record no longer costs the rest of its segment. The records
/// after it are found again by their checksums, the damaged bytes are kept aside, and the
/// checkpoint still says where delivery resumes.
#[test]
fn one_corrupt_record_in_the_middle_costs_only_that_record() {
    for field in ["payload", "length"] {
        let dir = tempfile::tempdir().unwrap();
        let (mut q, _) = Queue::open(settings(dir.path(), 0)).unwrap();
        push_range(&mut q, 0..100);
        // Acknowledged up to message 70: past the damage to come.
        let mut b = Batch::default();
        q.read(&mut b, 70, 1 << 20).unwrap();
        q.ack(&b).unwrap();
        drop(q);
        let seg = &segments(dir.path())[0];
        let mut bytes = std::fs::read(seg).unwrap();
        let at = offset_of(&bytes, "message 50");
        let damaged = bytes[at..at + 18].to_vec();
        match field {
            "payload" => bytes[at + 12] ^= 0x01,
            _ => bytes[at] ^= 0x20,
        }
        std::fs::write(seg, &bytes).unwrap();
        let (mut q, rec) = Queue::open(settings(dir.path(), 0)).unwrap();
        assert_eq!(rec.damage.len(), 1, "{field}: {:?}", rec.damage);
        let d = &rec.damage[0];
        assert!(matches!(d.kind, DamageKind::Corrupt(_)), "{field}: {d:?}");
        assert_eq!(d.valid_bytes, at as u64, "{field}");
        assert_eq!(d.cut_bytes, 18, "{field}: only the damaged record");
        assert_eq!(d.resumed_records, 49, "{field}");
        let aside = d.aside.clone().expect("kept aside");
        let mut want = damaged.clone();
        match field {
            "payload" => want[12] ^= 0x01,
            _ => want[0] ^= 0x20,
        }
        assert_eq!(std::fs::read(&aside).unwrap(), want, "{field}");
        assert!(d.to_string().contains("corrupt"), "{d}");
        assert_eq!(rec.records, 30, "{field}");
        assert_eq!(drain(&mut q, 7), expected(70..100), "{field}");
        drop(q);

        // Every valid record before and after the damage, when none was acknowledged.
        let dir = tempfile::tempdir().unwrap();
        let (mut q, _) = Queue::open(settings(dir.path(), 0)).unwrap();
        push_range(&mut q, 0..100);
        drop(q);
        let seg = &segments(dir.path())[0];
        let mut bytes = std::fs::read(seg).unwrap();
        let at = offset_of(&bytes, "message 50");
        match field {
            "payload" => bytes[at + 12] ^= 0x01,
            _ => bytes[at] ^= 0x20,
        }
        std::fs::write(seg, &bytes).unwrap();
        let (mut q, rec) = Queue::open(settings(dir.path(), 0)).unwrap();
        assert_eq!(rec.records, 99, "{field}");
        let mut want = expected(0..100);
        want.remove(50);
        let mut b = Batch::default();
        q.read(&mut b, 40, 1 << 20).unwrap();
        q.ack(&b).unwrap();
        drop(q);
        // The segment was repaired: no damage the second time, and the checkpoint holds.
        let (mut q, rec) = Queue::open(settings(dir.path(), 0)).unwrap();
        assert!(rec.damage.is_empty(), "{field}: {:?}", rec.damage);
        assert_eq!(drain(&mut q, 9), want[40..], "{field}");
        push_range(&mut q, 100..103);
        assert_eq!(drain(&mut q, 9), expected(100..103), "{field}");
    }
}

/// Issue 24 item 10: damage met while *reading* a segment (it changed on disk after the queue
/// opened it) cost the rest of that segment, and a length running past the last record
/// stalled reading for good. Now it is taken out as at open: the damaged bytes are copied
/// aside, the records after them are read, the loss is counted, and it is reported.
#[test]
fn a_record_damaged_while_its_segment_is_read_costs_only_that_record() {
    for (field, msg) in [
        ("payload", "message 50"),
        ("length", "message 50"),
        // The last record's length now runs past the end of the records.
        ("length", "message 99"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (mut q, _) = Queue::open(settings(dir.path(), 0)).unwrap();
        push_range(&mut q, 0..100);
        let seg = segments(dir.path())[0].clone();
        // Reading has begun: 20 records delivered, 10 more in flight.
        let mut b = Batch::default();
        q.read(&mut b, 20, 1 << 20).unwrap();
        q.ack(&b).unwrap();
        let mut in_flight = Batch::default();
        q.read(&mut in_flight, 10, 1 << 20).unwrap();
        // Now the disk changes under the open queue.
        let bytes = std::fs::read(&seg).unwrap();
        let at = offset_of(&bytes, msg);
        let mut damaged = bytes[at..at + 18].to_vec();
        match field {
            "payload" => damaged[12] ^= 0x01,
            _ => damaged[0] ^= 0x20,
        }
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .write_all_at(&damaged, at as u64)
            .unwrap();

        let mut got: Vec<String> = in_flight
            .records()
            .map(|r| String::from_utf8(r.to_vec()).unwrap())
            .collect();
        q.ack(&in_flight).unwrap();
        got.extend(drain(&mut q, 7));
        let mut want = expected(20..100);
        want.retain(|m| m != msg);
        assert_eq!(got, want, "{field} {msg}: every other record");
        assert!(
            q.is_empty(),
            "{field} {msg}: the lost record is not counted"
        );
        assert_eq!(q.disk_records(), 0, "{field} {msg}");
        assert_eq!(
            std::fs::read(seg.with_extension("seg.corrupt")).unwrap(),
            damaged,
            "{field} {msg}: the damaged bytes are kept aside"
        );
        let events = q.take_events();
        let [DiskEvent::Damaged(d)] = &events[..] else {
            panic!("{field} {msg}: {events:?}")
        };
        assert_eq!(d.valid_bytes, at as u64, "{field} {msg}");
        assert_eq!(d.cut_bytes, 18, "{field} {msg}");
        assert_eq!(d.aside, Some(seg.with_extension("seg.corrupt")));
        assert!(d.to_string().contains("corrupt"), "{d}");

        // The queue goes on, and the segment on disk no longer holds the damage.
        push_range(&mut q, 100..103);
        assert_eq!(drain(&mut q, 9), expected(100..103), "{field} {msg}");
        drop(q);
        let (q, rec) = Queue::open(settings(dir.path(), 0)).unwrap();
        assert!(rec.damage.is_empty(), "{field} {msg}: {:?}", rec.damage);
        assert_eq!(rec.records, 0, "{field} {msg}");
        drop(q);
    }
}

/// Damage met while reading, in two places of a middle segment, with segments before and
/// after it: one repair takes both out (as at open), and every other record of every
/// segment is delivered, in order.
#[test]
fn damage_met_while_reading_a_middle_segment_keeps_every_other_record() {
    let dir = tempfile::tempdir().unwrap();
    let (mut q, _) = Queue::open(settings(dir.path(), 0)).unwrap();
    // About 18 bytes a record, 4 KiB segments: several segments.
    for i in 0..10 {
        push_range(&mut q, i * 100..(i + 1) * 100);
    }
    let segs = segments(dir.path());
    assert!(segs.len() >= 3, "{segs:?}");
    let mut b = Batch::default();
    q.read(&mut b, 1, 1 << 20).unwrap();
    // The 50th and 60th records of the second segment lose a payload byte each.
    let bytes = std::fs::read(&segs[1]).unwrap();
    let mut starts = vec![SEGMENT_MAGIC.len()];
    while let Decoded::Record { len, .. } = record::decode(&bytes[*starts.last().unwrap()..]) {
        starts.push(starts.last().unwrap() + len);
    }
    let f = OpenOptions::new().write(true).open(&segs[1]).unwrap();
    let mut lost = Vec::new();
    for k in [50, 60] {
        let Decoded::Record { payload, .. } = record::decode(&bytes[starts[k]..]) else {
            panic!("record {k}")
        };
        lost.push(String::from_utf8(payload.to_vec()).unwrap());
        let at = starts[k] + record::HEADER_BYTES;
        f.write_all_at(&[bytes[at] ^ 0xff], at as u64).unwrap();
    }
    let mut got: Vec<String> = b
        .records()
        .map(|r| String::from_utf8(r.to_vec()).unwrap())
        .collect();
    q.ack(&b).unwrap();
    got.extend(drain(&mut q, 50));
    let mut want = expected(0..1000);
    want.retain(|m| !lost.contains(m));
    assert_eq!(got.len(), 998);
    assert_eq!(got, want);
    assert!(q.is_empty());
    let events = q.take_events();
    let [DiskEvent::Damaged(d)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(d.path, segs[1]);
    assert_eq!(d.valid_bytes, starts[50] as u64);
    assert_eq!(
        d.cut_bytes,
        (starts[51] - starts[50] + starts[61] - starts[60]) as u64,
        "only the two damaged records"
    );
}
