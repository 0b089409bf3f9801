//! Waiting without blind sleeps: a condition is polled every few milliseconds until it holds
//! or a deadline passes, and the error says what was awaited and for how long. The condition
//! may also fail early (a process that exited will never open its socket).

use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a test's wait may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(20);

/// Polls `ready` until it returns `Ok(Some(_))` or `timeout` passes (then the error is
/// `timed out after … waiting for WHAT`, with `detail()` appended when not empty). An
/// `Err` from `ready` ends the wait at once with that error.
pub fn try_until<T>(
    timeout: Duration,
    what: &str,
    detail: impl Fn() -> String,
    mut ready: impl FnMut() -> Result<Option<T>, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = ready()? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            let detail = detail();
            let sep = if detail.is_empty() { "" } else { ":\n" };
            return Err(format!(
                "timed out after {timeout:?} waiting for {what}{sep}{detail}"
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// Polls `ready` until it returns `Some(_)` or `timeout` passes.
pub fn until<T>(
    timeout: Duration,
    what: &str,
    mut ready: impl FnMut() -> Option<T>,
) -> Result<T, String> {
    try_until(timeout, what, String::new, || Ok(ready()))
}

/// Waits until `path` holds at least `n` lines; returns its content. `log` (a daemon's
/// diagnostics) is shown on failure with the start of the file.
pub fn lines(
    path: &Path,
    n: usize,
    timeout: Duration,
    log: impl Fn() -> String,
) -> Result<String, String> {
    let read = || std::fs::read_to_string(path).unwrap_or_default();
    try_until(
        timeout,
        &format!("{n} lines in {}", path.display()),
        || {
            let text = read();
            format!(
                "it has {} lines:\n{}\n--- daemon log:\n{}",
                text.lines().count(),
                text.chars().take(2000).collect::<String>(),
                log()
            )
        },
        || {
            let text = read();
            Ok((text.lines().count() >= n).then_some(text))
        },
    )
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub fn port(port: u16, timeout: Duration) -> Result<(), String> {
    until(timeout, &format!("a listener on 127.0.0.1:{port}"), || {
        TcpStream::connect(("127.0.0.1", port)).ok().map(drop)
    })
}

/// Waits until `path` exists (a Unix socket, a pid file).
pub fn path(path: &Path, timeout: Duration) -> Result<(), String> {
    until(timeout, &path.display().to_string(), || {
        path.exists().then_some(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_that_holds_returns_its_value() {
        let mut n = 0;
        let got = until(Duration::from_secs(5), "three polls", || {
            n += 1;
            (n == 3).then_some(n)
        });
        assert_eq!(got, Ok(3));
    }

    #[test]
    fn a_timeout_says_what_was_awaited_and_the_detail() {
        let err = try_until(
            Duration::from_millis(50),
            "the moon",
            || "still none".to_string(),
            || Ok(None::<()>),
        )
        .unwrap_err();
        assert!(
            err.starts_with("timed out after 50ms waiting for the moon"),
            "{err}"
        );
        assert!(err.ends_with(":\nstill none"), "{err}");
    }

    #[test]
    fn an_error_ends_the_wait_at_once() {
        let err = try_until(DEADLINE, "anything", String::new, || {
            Err::<Option<()>, _>("it exited".to_string())
        });
        assert_eq!(err, Err("it exited".to_string()));
    }
}
