//! A private ClickHouse server (Debian 12's `clickhouse-server` 18.16, installed by
//! `scripts/deps.sh test`), started as a plain process on loopback ports with its config,
//! data and logs in a directory of the caller's, and queried over its HTTP interface.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::child::Proc;
use crate::ports::free_port;

/// The server binary Debian installs.
pub const SERVER: &str = "/usr/sbin/clickhouse-server";

/// A running server; stopped (SIGTERM) by its PID when dropped.
pub struct ClickHouse {
    /// The process.
    pub proc: Proc,
    /// Its HTTP port on 127.0.0.1.
    pub http_port: u16,
    /// Its native (clickhouse-client) port on 127.0.0.1.
    pub tcp_port: u16,
    dir: PathBuf,
}

impl ClickHouse {
    /// Whether the server is installed; `Err` says how to install it.
    pub fn available() -> Result<(), String> {
        if Path::new(SERVER).exists() {
            Ok(())
        } else {
            Err("clickhouse-server is not installed: run scripts/deps.sh test (as root), or apt-get install clickhouse-server".into())
        }
    }

    /// Starts a server whose files live in `dir`, and waits until it answers.
    pub fn start(dir: &Path) -> Result<ClickHouse, String> {
        ClickHouse::available()?;
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let http_port = free_port()?;
        ClickHouse::start_on(dir, http_port)
    }

    /// Starts a server on `dir` and `http_port` (again, after [`ClickHouse::stop`]).
    pub fn start_on(dir: &Path, http_port: u16) -> Result<ClickHouse, String> {
        let tcp_port = free_port()?;
        let config = dir.join("config.xml");
        let d = dir.display();
        std::fs::write(
            &config,
            format!(
                r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/server.err.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>5368709</mark_cache_size>
</yandex>
"#
            ),
        )
        .map_err(|e| e.to_string())?;
        std::fs::write(
            dir.join("users.xml"),
            r#"<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default></default></quotas>
</yandex>
"#,
        )
        .map_err(|e| e.to_string())?;
        let mut cmd = Command::new(SERVER);
        cmd.arg(format!("--config-file={}", config.display()))
            .current_dir(dir);
        let mut proc = Proc::spawn("clickhouse-server", cmd, &dir.join("stdout.log"))?;
        let ch_dir = dir.to_path_buf();
        proc.wait_ready(Duration::from_secs(30), "answer on its HTTP port", || {
            get(http_port, "/").is_ok_and(|b| b.starts_with("Ok."))
        })
        .map_err(|e| {
            let log = std::fs::read_to_string(ch_dir.join("server.err.log")).unwrap_or_default();
            format!("{e}\n{log}")
        })?;
        Ok(ClickHouse {
            proc,
            http_port,
            tcp_port,
            dir: dir.to_path_buf(),
        })
    }

    /// Runs `sql`; its answer, or the server's error.
    pub fn query(&self, sql: &str) -> Result<String, String> {
        let (status, body) = request(self.http_port, "POST", "/", sql.as_bytes())?;
        if status == 200 {
            Ok(body)
        } else {
            Err(format!("{sql}: {status} {body}"))
        }
    }

    /// SIGTERM, and waits for the exit; the data stays in the directory.
    pub fn stop(mut self) -> Result<PathBuf, String> {
        self.proc.stop();
        Ok(self.dir.clone())
    }

    /// The server's error log.
    pub fn errors(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.err.log")).unwrap_or_default()
    }
}

fn get(port: u16, path: &str) -> Result<String, String> {
    request(port, "GET", path, b"").map(|(_, b)| b)
}

/// One HTTP/1.0 request to 127.0.0.1:`port`: the status and the body.
fn request(port: u16, method: &str, path: &str, body: &[u8]) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    s.write_all(body).map_err(|e| e.to_string())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP answer: {answer:?}"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    Ok((status, body.to_string()))
}
