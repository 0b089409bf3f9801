//! Opening a queue whose one segment file (and, optionally, checkpoint) holds any bytes,
//! then reading and acknowledging everything: no panic, no error, memory bounded (run.sh
//! sets libFuzzer's malloc limit), and what was read is what opening promised: as many
//! records as recovered, each no longer than the input. A second open after that finds an
//! empty, undamaged queue.
//!
//! The first byte chooses: bit 0 writes the segment magic before the rest (so the fuzzer
//! need not find it), bit 1 takes the next 20 bytes as the `ack` checkpoint file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logwell::queue::{Batch, Fsync, Queue, QueueSettings, MAX_ASIDE_BYTES, SEGMENT_MAGIC};

fn settings(dir: &std::path::Path) -> QueueSettings {
    QueueSettings {
        dir: Some(dir.to_path_buf()),
        memory_bytes: 4096,
        max_disk_bytes: 1 << 20,
        segment_bytes: 4096,
        fsync: Fsync::None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    if flags & 2 != 0 {
        let n = rest.len().min(20);
        std::fs::write(dir.path().join("ack"), &rest[..n]).unwrap();
        rest = &rest[n..];
    }
    let mut segment = Vec::new();
    if flags & 1 != 0 {
        segment.extend_from_slice(SEGMENT_MAGIC);
    }
    segment.extend_from_slice(rest);
    // The first segment number of an empty directory (1 << 40), as the queue names it.
    std::fs::write(dir.path().join(format!("{:020}.seg", 1u64 << 40)), &segment).unwrap();

    let (mut q, recovery) =
        Queue::open(settings(dir.path())).expect("a damaged segment is no error");
    for d in &recovery.damage {
        assert!(!d.to_string().is_empty());
        if let Some(aside) = &d.aside {
            let len = std::fs::metadata(aside).unwrap().len();
            assert!(len <= MAX_ASIDE_BYTES && len <= segment.len() as u64);
        }
    }
    assert_eq!(q.len(), recovery.records);
    let mut read = 0u64;
    loop {
        let mut b = Batch::default();
        let n = q.read(&mut b, 16, 1024).expect("read");
        if n == 0 {
            break;
        }
        for r in b.records() {
            assert!(r.len() <= segment.len());
        }
        read += n as u64;
        assert!(read <= recovery.records, "more records read than recovered");
        q.ack(&b).expect("ack");
    }
    assert_eq!(read, recovery.records, "records recovered but never read");
    assert!(q.is_empty());
    q.close().expect("close");

    let (q, again) = Queue::open(settings(dir.path())).expect("reopen");
    assert_eq!(again.records, 0, "acknowledged records came back");
    assert!(
        again.damage.is_empty(),
        "damage after a clean close: {:?}",
        again.damage
    );
    q.close().expect("close");
});
