//! A small W3C WebDriver client for the web page's test: it starts Debian's `chromedriver`
//! (package `chromium-driver`) on a loopback port, which starts headless `chromium`, and
//! speaks the protocol's JSON over plain HTTP/1.1. Every wait polls a DOM condition with a
//! deadline; nothing sleeps and hopes.
//!
//! [`Browser::start`] returns `None`, after printing why, when chromium or chromedriver is
//! missing and `CI` is not `true`; under `CI=true` it fails instead.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::util::{free_port, DEADLINE};

/// The WebDriver reference of an element.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The Enter key, for [`Browser::send_keys`].
pub const ENTER: &str = "\u{E007}";

/// A headless Chromium driven through chromedriver; both end (by PID) when it is dropped.
pub struct Browser {
    port: u16,
    session: String,
    driver: Child,
    /// chromedriver's log and chromium's profile.
    dir: tempfile::TempDir,
}

/// The program `env` names, else the first of `candidates` that exists; `None` if that is
/// not a file.
fn find_program(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    match std::env::var_os(env) {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        None => candidates.iter().map(PathBuf::from).find(|p| p.is_file()),
    }
}

impl Browser {
    /// Starts chromedriver and a headless chromium with a fresh profile, `width`×`height`.
    /// `None` (after a skip line) when they are not installed and `CI` is not `true`.
    pub fn start(width: u32, height: u32) -> Option<Browser> {
        let chromium = find_program(
            "LOGWELL_CHROMIUM",
            &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
        );
        let driver = find_program("LOGWELL_CHROMEDRIVER", &["/usr/bin/chromedriver"]);
        let (chromium, driver) = match (chromium, driver) {
            (Some(c), Some(d)) => (c, d),
            _ => {
                let msg = "chromium or chromedriver is missing: install Debian's `chromium` and \
                           `chromium-driver` (scripts/deps.sh test does it as root)";
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("{msg}");
                }
                // Straight to stderr, past the test harness's capture, so the skip shows.
                let _ = writeln!(std::io::stderr(), "web page test skipped: {msg}");
                return None;
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                dir.path().join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", driver.display()));
        let mut browser = Browser {
            port,
            session: String::new(),
            driver: child,
            dir,
        };
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(v) = browser.request("GET", "/status", None) {
                if v["value"]["ready"] == json!(true) {
                    break;
                }
            }
            if let Some(status) = browser.driver.try_wait().unwrap() {
                panic!(
                    "chromedriver exited with {status}:\n{}",
                    browser.driver_log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let profile = browser.dir.path().join("profile");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "timeouts": {"script": 30_000, "pageLoad": 30_000, "implicit": 0},
            "goog:chromeOptions": {
                "binary": chromium.to_str().unwrap(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.display()),
                    format!("--window-size={width},{height}"),
                ],
            },
        }}});
        let v = browser
            .request("POST", "/session", Some(&caps))
            .unwrap_or_else(|e| panic!("new session: {e}\n{}", browser.driver_log()));
        browser.session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session in {v}\n{}", browser.driver_log()))
            .to_string();
        Some(browser)
    }

    fn driver_log(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// One WebDriver command; `Err` with the driver's message when it answers an error.
    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        s.set_write_timeout(Some(DEADLINE)).unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        );
        s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
        s.write_all(body.as_bytes()).map_err(|e| e.to_string())?;
        // chromedriver keeps the connection open whatever the request says: read the header,
        // then exactly the body it announces.
        let mut raw = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        let (head, body_start) = loop {
            if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break (
                    String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase(),
                    split + 4,
                );
            }
            let n = s.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("chromedriver closed the connection before answering".into());
            }
            raw.extend_from_slice(&buf[..n]);
        };
        let length = head.lines().find_map(|l| {
            l.strip_prefix("content-length:")
                .and_then(|v| v.trim().parse::<usize>().ok())
        });
        let chunked = head.contains("transfer-encoding: chunked")
            || head.contains("transfer-encoding:chunked");
        loop {
            let body = &raw[body_start..];
            let complete = match length {
                Some(n) => body.len() >= n,
                None if chunked => body.ends_with(b"0\r\n\r\n"),
                None => false,
            };
            if complete {
                break;
            }
            let n = s.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
        }
        let mut payload = raw[body_start..].to_vec();
        if let Some(n) = length {
            payload.truncate(n);
        } else if chunked {
            payload = dechunk(&payload);
        }
        let v: Value = serde_json::from_slice(&payload)
            .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&payload)))?;
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if status != 200 {
            return Err(format!("{method} {path}: HTTP {status}: {}", v["value"]));
        }
        Ok(v)
    }

    fn session_cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let body = (method == "POST").then_some(&body);
        match self.request(method, &path, body) {
            Ok(v) => v["value"].clone(),
            Err(e) => panic!("{e}"),
        }
    }

    /// Opens `url` and waits for it to load.
    pub fn goto(&self, url: &str) {
        self.session_cmd("POST", "/url", json!({ "url": url }));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.session_cmd(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": args }),
        )
    }

    /// Evaluates `script` until `done` accepts its value, at most [`DEADLINE`]; returns it.
    /// `what` says what was awaited when it fails, and `context` adds to that message (the
    /// daemon's log, say).
    pub fn wait_for(
        &self,
        what: &str,
        script: &str,
        done: impl Fn(&Value) -> bool,
        context: impl Fn() -> String,
    ) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let v = self.execute(script, json!([]));
            if done(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "waited {DEADLINE:?} for {}; last seen: {}\n{}",
                shorten(what),
                shorten(&format!("{v:#}")),
                context()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The first element matching the CSS `selector`.
    pub fn find(&self, selector: &str) -> String {
        let v = self.session_cmd(
            "POST",
            "/element",
            json!({ "using": "css selector", "value": selector }),
        );
        v[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("no element {selector}: {v}"))
            .to_string()
    }

    /// Clicks the element matching `selector`, as a user would.
    pub fn click(&self, selector: &str) {
        let el = self.find(selector);
        self.session_cmd("POST", &format!("/element/{el}/click"), json!({}));
    }

    /// Types `text` into the element matching `selector` (after clearing it, if `clear`).
    pub fn send_keys(&self, selector: &str, text: &str, clear: bool) {
        let el = self.find(selector);
        if clear {
            self.session_cmd("POST", &format!("/element/{el}/clear"), json!({}));
        }
        self.session_cmd(
            "POST",
            &format!("/element/{el}/value"),
            json!({ "text": text }),
        );
    }

    /// Presses and releases `key` on whatever element has the focus.
    pub fn press(&self, key: &str) {
        self.session_cmd(
            "POST",
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]}]}),
        );
        self.session_cmd("DELETE", "/actions", json!({}));
    }

    /// Resizes the window.
    pub fn resize(&self, width: u32, height: u32) {
        self.session_cmd(
            "POST",
            "/window/rect",
            json!({ "width": width, "height": height }),
        );
    }

    /// Saves a PNG of the viewport to `path`.
    pub fn screenshot(&self, path: &Path) {
        let v = self.session_cmd("GET", "/screenshot", json!({}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 PNG"))
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.request("DELETE", &format!("/session/{}", self.session), None);
        }
        // chromedriver's own way out, then, if it is still there after a while, its PID.
        let _ = self.request("GET", "/shutdown", None);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.driver.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.driver.kill();
                let _ = self.driver.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `text`, or its start and end when it is long (thousands of rows).
pub fn shorten(text: &str) -> String {
    const KEEP: usize = 3000;
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 2 * KEEP {
        return text.to_string();
    }
    let head: String = chars[..KEEP].iter().collect();
    let tail: String = chars[chars.len() - KEEP..].iter().collect();
    format!(
        "{head}\n… {} characters left out …\n{tail}",
        chars.len() - 2 * KEEP
    )
}

/// Decodes an HTTP/1.1 chunked body.
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&data[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap().trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}
