//! Issue 34: batching follows the load, not timers. A line is written once its input has
//! nothing more to read and its writer nothing more queued, whatever `flush_interval_ms`
//! says; timing goals live in the benchmarks (`compare latency`), not here.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::util::Daemon;

const CONFIG: &str = r#"
[input.tcp]
type = "tcp"
listen = "127.0.0.1:{port}"

[input.udp]
type = "udp"
listen = "127.0.0.1:{port}"

[input.dgram]
type = "unix_datagram"
path = "{dir}/log.sock"

[output.all]
type = "file"
path = "{dir}/all.log"
# Neither bound can be what writes the lines below.
flush_interval_ms = 600000
buffer_bytes = 67108864

[[rule]]
output = "all"
"#;

/// How long a trickle may go on before the test gives up on its first line.
const PATIENCE: Duration = Duration::from_secs(10);

/// Sends line `i` (`send(i)`) every 2 ms, a trickle that never pauses, until line 0 is in
/// the file; fails after [`PATIENCE`].
fn trickle_until_written(d: &Daemon, what: &str, mut send: impl FnMut(usize)) {
    let file = d.path("all.log");
    let first = format!("{what} trickle 0\n");
    let start = Instant::now();
    let mut i = 0;
    loop {
        send(i);
        i += 1;
        std::thread::sleep(Duration::from_millis(2));
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if text.lines().any(|l| l.ends_with(first.trim_end())) {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{what}: {i} lines sent 2 ms apart over {PATIENCE:?}, and the first is still not \
             in the file: lines wait for the trickle to pause or for flush_interval_ms\n{}",
            d.log()
        );
    }
}

/// Before issue 34 an input held lines for 5 ms and the writer waited for 10 ms without a
/// chunk (or `flush_interval_ms`): a trickle with no 10 ms pause was not written while it
/// lasted. Real scheduling leaves such pauses now and then, so the old code ended a burst
/// after 50 ms to 1.6 s here and passed too; the unit tests `issue_34_*` (`input::stream`,
/// `output::file`) are the ones that fail on it. This one shows the behaviour end to end.
#[test]
fn issue_34_a_steady_trickle_is_written_while_it_lasts() {
    let d = Daemon::start(CONFIG);

    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    tcp.set_nodelay(true).unwrap();
    trickle_until_written(&d, "tcp", |i| {
        tcp.write_all(format!("<13>tcp: tcp trickle {i}\n").as_bytes())
            .unwrap()
    });

    let unix = UnixDatagram::unbound().unwrap();
    unix.connect(d.path("log.sock")).unwrap();
    trickle_until_written(&d, "unix", |i| {
        unix.send(format!("<13>unix: unix trickle {i}").as_bytes())
            .unwrap();
    });

    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.connect(("127.0.0.1", d.port)).unwrap();
    trickle_until_written(&d, "udp", |i| {
        udp.send(format!("<13>udp: udp trickle {i}").as_bytes())
            .unwrap();
    });
}
