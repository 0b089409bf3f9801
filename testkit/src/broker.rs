//! The Tansu Kafka-compatible broker: `scripts/kafka-broker.sh` installs it and prints
//! `LOGWELL_TANSU=…`. A [`Broker`] runs it on a free loopback port with memory storage
//! (`--storage-engine memory://tansu/`), so each test or case starts empty; it is stopped
//! by its PID when dropped. Creating topics and consuming need a Kafka client, which stays
//! with the callers (the kit does not build librdkafka).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::child::Proc;
use crate::ports::free_port;

/// How long the broker may take to listen, and to stop.
const DEADLINE: Duration = Duration::from_secs(10);

/// The broker binary from `LOGWELL_TANSU`, `None` when it is unset.
pub fn tansu() -> Option<PathBuf> {
    std::env::var_os("LOGWELL_TANSU").map(PathBuf::from)
}

/// A Tansu broker on a loopback port, started by this process (or not yet).
pub struct Broker {
    /// Its port on 127.0.0.1.
    pub port: u16,
    bin: PathBuf,
    proc: Option<Proc>,
}

impl Broker {
    /// A broker on a free loopback port, not started yet (a test may point logwelld at a
    /// broker that is down).
    pub fn new(bin: PathBuf) -> Result<Broker, String> {
        Ok(Broker {
            port: free_port()?,
            bin,
            proc: None,
        })
    }

    /// Starts it and waits until it accepts connections.
    pub fn start(&mut self) -> Result<(), String> {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let mut cmd = Command::new(&self.bin);
        cmd.args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let mut p = Proc::spawn_as_set("tansu", cmd)?.grace(DEADLINE);
        p.wait_port(self.port, DEADLINE)?;
        self.proc = Some(p);
        Ok(())
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers` and logwelld's `brokers`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its process id (0 when not started).
    pub fn pid(&self) -> i32 {
        self.proc.as_ref().map_or(0, Proc::pid)
    }

    /// Sends it a signal (SIGSTOP to make it unresponsive, SIGCONT to bring it back).
    pub fn signal(&self, sig: i32) -> Result<(), String> {
        self.proc
            .as_ref()
            .ok_or("the broker was not started")?
            .signal(sig)
    }

    /// Stops it (SIGTERM, then SIGKILL); a later [`Broker::start`] starts an empty one on
    /// the same port.
    pub fn stop(&mut self) {
        self.proc = None;
    }
}
