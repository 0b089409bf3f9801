//! The web page (`GET /` of the follow service) in real headless Chromium, against the real
//! `logwelld`, with lines sent by the real `logger`: history on open, live lines, severity
//! colours, the priority, tag and text filters (exactly the right lines), a hostile line
//! shown as text, a refused filter shown to the user, pause and resume without gap or
//! duplicate, reconnection with `Last-Event-ID` across a daemon restart, the 5,000-row cap,
//! autoscroll that stops when the user scrolls up, a 360 px wide window, the token passed on
//! from the page's address, the gap note for lines lost to retention, and the file inputs'
//! lag. Screenshots go to
//! `target/test-artifacts/` (the path is printed).
//!
//! Skipped, with a line saying so, when chromium or chromedriver is missing and `CI` is not
//! `true` (see `webdriver.rs`).

use std::path::PathBuf;

use serde_json::Value;

use crate::util::{logger, Daemon};
use crate::webdriver::{shorten, Browser, ENTER};

const CONFIG: &str = r#"
[input.dgram]
type = "unix_datagram"
path = "{dir}/log.sock"

[output.messages]
type = "file"
path = "{dir}/messages.json"
format = "json"
flush_interval_ms = 20

[output.syslog]
type = "file"
path = "{dir}/syslog"
format = "traditional"
flush_interval_ms = 20

[[rule]]
output = ["messages", "syslog"]

[follow]
listen = "127.0.0.1:{port}"
allow_unauthenticated = true
default_file = "messages"
"#;

/// A line whose text would run script if the page ever parsed log text as markup.
const HOSTILE: &str =
    r#"<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> &amp; <b>bold</b>"#;

const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// One line the test sent, what the page must show for it.
#[derive(Clone)]
struct Sent {
    severity: &'static str,
    tag: &'static str,
    msg: String,
}

/// What the page asks the server for.
#[derive(Clone, Default)]
struct View {
    /// The `traditional` file (no severity) instead of the `json` one.
    traditional: bool,
    /// Highest priority number shown (`err` → 3).
    max_priority: Option<usize>,
    tag: Option<&'static str>,
    grep: Option<regex::Regex>,
}

/// A row as the page shows it: (severity, tag, message text).
type Row = (String, String, String);

/// The rows `view` must show of everything sent, in order.
fn expected(sent: &[Sent], view: &View) -> Vec<Row> {
    sent.iter()
        .filter(|s| {
            let prio = SEVERITIES.iter().position(|x| *x == s.severity).unwrap();
            view.max_priority.is_none_or(|m| prio <= m)
                && view.tag.is_none_or(|t| t == s.tag)
                && view.grep.as_ref().is_none_or(|g| g.is_match(&s.msg))
        })
        .map(|s| {
            let severity = if view.traditional { "" } else { s.severity };
            (severity.to_string(), s.tag.to_string(), s.msg.clone())
        })
        .collect()
}

/// The page's state: its rows with their data attributes, the connection status, the error.
const STATE: &str = r#"
const rows = [...document.querySelectorAll('#log .row')].map(r => ({
  cursor: r.dataset.cursor, severity: r.dataset.severity, tag: r.dataset.tag,
  msg: r.querySelector('.m') ? r.querySelector('.m').textContent : null }));
return {
  rows,
  status: document.getElementById('status').dataset.state,
  error: document.getElementById('error').textContent,
  notices: [...document.querySelectorAll('#log .notice')].map(n => n.textContent),
  injected: document.querySelectorAll('#log script, #log img, #log b').length,
  pwned: window.__pwned === undefined ? null : window.__pwned,
};
"#;

fn rows_of(state: &Value) -> Vec<Row> {
    state["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    let s = |k: &str| r[k].as_str().unwrap_or("<missing>").to_string();
                    (s("severity"), s("tag"), s("msg"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The browser, the daemon and everything sent so far.
struct Session {
    browser: Browser,
    daemon: Daemon,
    sent: Vec<Sent>,
}

impl Session {
    /// Sends one line with `logger` and waits until the daemon has written it, so that what
    /// the page shows next is decided by the page and the server alone.
    fn send(&mut self, severity: &'static str, tag: &'static str, msg: &str) {
        let sock = self.daemon.path("log.sock");
        logger(&[
            "-u",
            sock.to_str().unwrap(),
            "-p",
            &format!("user.{severity}"),
            "-t",
            tag,
            "--",
            msg,
        ]);
        self.sent.push(Sent {
            severity,
            tag,
            msg: msg.to_string(),
        });
        self.daemon
            .wait_lines(&self.daemon.path("messages.json"), self.sent.len());
    }

    /// Sends `count` lines in one `logger -f` run, numbered after `prefix`.
    fn send_many(&mut self, tag: &'static str, prefix: &str, count: usize) {
        let file = self.daemon.path("many.txt");
        let text: String = (0..count).map(|i| format!("{prefix} {i}\n")).collect();
        std::fs::write(&file, text).unwrap();
        let sock = self.daemon.path("log.sock");
        logger(&[
            "-u",
            sock.to_str().unwrap(),
            "-p",
            "user.info",
            "-t",
            tag,
            "-f",
            file.to_str().unwrap(),
        ]);
        self.sent.extend((0..count).map(|i| Sent {
            severity: "info",
            tag,
            msg: format!("{prefix} {i}"),
        }));
        self.daemon
            .wait_lines(&self.daemon.path("messages.json"), self.sent.len());
    }

    /// Waits until the page shows exactly the rows `view` selects, live, with no gap; checks
    /// every row has a cursor and no cursor repeats. Returns the page's state.
    fn shows(&self, what: &str, view: &View) -> Value {
        self.shows_last(what, view, usize::MAX)
    }

    /// Like [`Session::shows`], for a page that keeps only the newest `cap` rows.
    fn shows_last(&self, what: &str, view: &View, cap: usize) -> Value {
        let mut want = expected(&self.sent, view);
        want.drain(..want.len().saturating_sub(cap));
        let state = self.browser.wait_for(
            &format!("{what}: the page to show {want:#?}"),
            STATE,
            |s| {
                assert_ne!(
                    s["status"],
                    "error",
                    "{what}: the page stopped: {}",
                    shorten(&s.to_string())
                );
                s["status"] == "live" && rows_of(s) == want
            },
            || format!("--- daemon log:\n{}", self.daemon.log()),
        );
        assert_eq!(
            state["notices"],
            serde_json::json!([]),
            "{what}: a gap or warning was shown: {}",
            shorten(&state.to_string())
        );
        let cursors: Vec<&str> = state["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["cursor"].as_str().unwrap_or(""))
            .collect();
        assert!(
            cursors.iter().all(|c| !c.is_empty()),
            "{what}: a row without data-cursor: {}",
            shorten(&state.to_string())
        );
        let mut unique = cursors.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            cursors.len(),
            "{what}: a cursor repeats: {}",
            shorten(&state.to_string())
        );
        self.not_injected(&state);
        state
    }

    fn not_injected(&self, state: &Value) {
        assert_eq!(
            state["injected"],
            0,
            "log text became markup: {}",
            shorten(&state.to_string())
        );
        assert_eq!(
            state["pwned"],
            Value::Null,
            "log text ran as script: {}",
            shorten(&state.to_string())
        );
    }

    fn status(&self, what: &str, status: &str) -> Value {
        self.browser.wait_for(
            what,
            STATE,
            |s| s["status"] == status,
            || format!("--- daemon log:\n{}", self.daemon.log()),
        )
    }
}

fn artifact(name: &str) -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    target.parent().unwrap().join("test-artifacts").join(name)
}

#[test]
fn web_page_follows_filters_pauses_and_reconnects_in_chromium() {
    let Some(browser) = Browser::start(1280, 800) else {
        return;
    };
    let daemon = Daemon::start(CONFIG);
    let url = format!("http://127.0.0.1:{}/?n=100", daemon.port);
    let mut s = Session {
        browser,
        daemon,
        sent: Vec::new(),
    };

    // History: sent before the page is opened.
    s.send("err", "web-a", "history one: disk on fire");
    s.send("warning", "web-b", "history two: disk almost full");
    s.send("info", "web-a", "history three: all is well");
    s.send("debug", "web-b", "history four: some details");
    s.send("notice", "web-evil", HOSTILE);
    s.browser.goto(&url);
    let all = View::default();
    s.shows("history on open", &all);

    // Live.
    s.send("crit", "web-a", "live one: kernel panic");
    s.send("notice", "web-b", "live two: user logged in");
    s.send("info", "web-c", "live three: cron ran");
    s.send("alert", "web-c", "live four: take action");
    s.send("emerg", "web-a", "live five: unusable");
    let state = s.shows("live lines", &all);
    let hostile = state["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tag"] == "web-evil")
        .expect("the hostile row");
    assert_eq!(hostile["msg"], HOSTILE, "shown as the very text sent");
    // Severity colours, as journalctl: err and worse red and bold, warning yellow, notice
    // bold, debug grey, info plain.
    let styles = s.browser.execute(
        r#"const out = {};
for (const r of document.querySelectorAll('#log .row')) {
  const st = getComputedStyle(r.querySelector('.m'));
  out[r.dataset.severity] = {color: st.color, weight: st.fontWeight};
}
return out;"#,
        serde_json::json!([]),
    );
    let style = |sev: &str| {
        (
            styles[sev]["color"].as_str().unwrap().to_string(),
            styles[sev]["weight"].as_str().unwrap().to_string(),
        )
    };
    let (info, plain) = style("info");
    assert_eq!(plain, "400", "info is plain: {styles}");
    for sev in ["emerg", "alert", "crit", "err"] {
        assert_eq!(style(sev), style("err"), "{sev} looks like err: {styles}");
    }
    let (err, err_weight) = style("err");
    assert_eq!(err_weight, "700", "err is bold: {styles}");
    let (warning, _) = style("warning");
    let (notice, notice_weight) = style("notice");
    let (debug, _) = style("debug");
    assert_eq!(notice_weight, "700", "notice is bold: {styles}");
    assert_eq!(notice, info, "notice has the plain colour: {styles}");
    for (name, colour) in [("err", &err), ("warning", &warning), ("debug", &debug)] {
        assert_ne!(colour, &info, "{name} has its own colour: {styles}");
    }
    assert_ne!(err, warning, "{styles}");
    assert_ne!(warning, debug, "{styles}");
    // Red: more red than green or blue.
    let rgb: Vec<u32> = err
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .map(|c| c.trim().parse().unwrap())
        .collect();
    assert!(
        rgb[0] > 2 * rgb[1] && rgb[0] > 2 * rgb[2],
        "err is red: {err}"
    );

    let wide = artifact("web-follow.png");
    s.browser.screenshot(&wide);
    println!("screenshot: {}", wide.display());

    // Priority: warning and above, applied by the server. After the history, a line that
    // must stay hidden and then one that must show: the second proves the first was seen.
    s.browser.click("#prio option[value='warning']");
    let prio = View {
        max_priority: Some(4),
        ..View::default()
    };
    s.shows("priority warning and above", &prio);
    s.send("debug", "web-c", "probe: quiet debug");
    s.send("warning", "web-c", "probe: loud warning");
    s.shows("priority warning and above, live", &prio);

    // Tag, typed and applied with Enter.
    s.browser.click("#prio option[value='']");
    s.browser.send_keys("#tag", &format!("web-b{ENTER}"), true);
    let tag = View {
        tag: Some("web-b"),
        ..View::default()
    };
    s.shows("tag web-b", &tag);
    s.send("info", "web-a", "probe: tag a");
    s.send("info", "web-b", "probe: tag b");
    s.shows("tag web-b, live", &tag);

    // Text: a regex, with the tag cleared.
    s.browser.send_keys("#tag", ENTER, true);
    s.browser
        .send_keys("#grep", &format!("fire|panic|needle{ENTER}"), true);
    let text = View {
        grep: Some(regex::Regex::new("fire|panic|needle").unwrap()),
        ..View::default()
    };
    s.shows("text fire|panic|needle", &text);
    s.send("err", "web-c", "probe: hay");
    s.send("info", "web-c", "probe: needle");
    s.shows("text fire|panic|needle, live", &text);

    // Priority and tag together.
    s.browser.send_keys("#grep", ENTER, true);
    s.browser.send_keys("#tag", &format!("web-a{ENTER}"), true);
    s.browser.click("#prio option[value='err']");
    let both = View {
        max_priority: Some(3),
        tag: Some("web-a"),
        ..View::default()
    };
    s.shows("priority err and above, tag web-a", &both);

    // The traditional file stores no priority: the server refuses the filter, and the page
    // must say so rather than show nothing.
    s.browser.click("#file option[value='syslog']");
    let refused = s.status("the refused priority filter on a traditional file", "error");
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.starts_with("400"),
        "the server's refusal is shown: {refused:#}"
    );
    assert!(
        error.len() > "400 Bad Request: ".len(),
        "with its reason: {refused:#}"
    );
    assert_eq!(rows_of(&refused), Vec::<Row>::new());
    // Without it, the traditional file shows its lines, with tags and without severity.
    s.browser.click("#prio option[value='']");
    let traditional = View {
        traditional: true,
        tag: Some("web-a"),
        ..View::default()
    };
    let state = s.shows("traditional file, tag web-a", &traditional);
    assert_eq!(
        state["error"], "",
        "the error is gone once the stream is open"
    );

    // Pause and resume: nothing is shown while paused; on resume the page asks for what
    // came after the last line it showed, and gets exactly that.
    s.browser.send_keys("#tag", ENTER, true);
    s.browser.click("#file option[value='messages']");
    s.shows("back to the json file", &all);
    s.browser.click("#pause");
    s.status("paused", "paused");
    let before = expected(&s.sent, &all);
    for i in 0..3 {
        s.send("info", "web-p", &format!("while paused {i}"));
    }
    let paused = s.browser.execute(STATE, serde_json::json!([]));
    assert_eq!(rows_of(&paused), before, "lines were shown while paused");
    // Resume with the keyboard: `p` on the focused log.
    s.browser.click("#log");
    s.browser.press("p");
    s.shows("resumed: the lines sent while paused, once each", &all);

    // A daemon restart: EventSource reconnects by itself with Last-Event-ID, and the server
    // resumes after the last line shown (with `n=100` in the URL, a reconnection that lost
    // its place would show the history again).
    assert!(s.daemon.stop().success());
    s.status("the daemon stopped", "reconnecting");
    s.daemon.restart();
    s.send("warning", "web-r", "after the restart");
    s.shows("reconnected after a restart", &all);

    // The view keeps the newest 5,000 lines.
    s.send_many("web-many", "many", 5_050);
    let state = s.shows_last("the newest 5,000 lines", &all, 5_000);
    assert_eq!(state["rows"].as_array().unwrap().len(), 5_000);

    // A phone-sized window: nothing wider than the screen, the newest line in view.
    s.browser.resize(360, 740);
    let geometry = r#"
const log = document.getElementById('log');
return {width: window.innerWidth, scroll: document.documentElement.scrollWidth,
  top: log.scrollTop, bottom: log.scrollHeight - log.scrollTop - log.clientHeight,
  follow: log.dataset.follow, jump: !document.getElementById('jump').hidden};"#;
    let fits = s.browser.wait_for(
        "the page to fit 360 px, at the newest line",
        geometry,
        |v| {
            v["width"].as_u64().is_some_and(|w| w <= 400)
                && v["bottom"].as_f64().is_some_and(|b| b < 4.0)
        },
        String::new,
    );
    assert!(
        fits["scroll"].as_u64().unwrap() <= fits["width"].as_u64().unwrap(),
        "the page is wider than a 360 px window: {fits}"
    );

    // Scrolling up stops the autoscroll: a new line leaves the view where the user put it,
    // and offers a way back.
    s.browser.execute(
        "document.getElementById('log').scrollTop = 0;",
        serde_json::json!([]),
    );
    s.browser.wait_for(
        "the view to stop following",
        geometry,
        |v| v["follow"] == "false",
        String::new,
    );
    s.send("notice", "web-r", "while scrolled up");
    s.shows_last("a line while scrolled up", &all, 5_000);
    let up = s.browser.execute(geometry, serde_json::json!([]));
    assert!(up["top"].as_f64().unwrap() < 1.0, "the view moved: {up}");
    assert_eq!(up["jump"], true, "no way back to the newest line: {up}");
    s.browser.click("#jump");
    s.browser.wait_for(
        "the view to follow again",
        geometry,
        |v| {
            v["follow"] == "true"
                && v["bottom"].as_f64().is_some_and(|b| b < 4.0)
                && v["jump"] == false
        },
        String::new,
    );
    let narrow = artifact("web-follow-360.png");
    s.browser.screenshot(&narrow);
    println!("screenshot: {}", narrow.display());
}

/// A follow service that requires a token: the page, opened without it, says so; opened as
/// `/?token=…`, it passes the token on to `/v1/files` and `/v1/follow` and shows the lines.
#[test]
fn web_page_passes_the_token_from_its_address() {
    let Some(browser) = Browser::start(1024, 700) else {
        return;
    };
    const TOKEN: &str = "0123456789abcdef-web-token";
    let daemon = Daemon::start(&CONFIG.replace(
        "default_file = \"messages\"",
        &format!("default_file = \"messages\"\ntoken = \"{TOKEN}\""),
    ));
    let base = format!("http://127.0.0.1:{}/", daemon.port);
    let mut s = Session {
        browser,
        daemon,
        sent: Vec::new(),
    };
    s.send("warning", "web-t", "behind a token");

    s.browser.goto(&base);
    let refused = s.status("the page without the token", "error");
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.starts_with("401"),
        "the refusal is shown: {refused:#}"
    );
    assert!(error.contains("?token="), "with what to do: {refused:#}");

    s.browser.goto(&format!("{base}?token={TOKEN}"));
    s.shows("the page with the token", &View::default());
    s.send("info", "web-t", "live behind a token");
    s.shows("the page with the token, live", &View::default());
}

/// A page paused while retention deletes the lines after its last one: on resume it marks the
/// loss, then shows what is left, in order.
#[test]
fn web_page_marks_lines_lost_to_retention() {
    let Some(browser) = Browser::start(1024, 700) else {
        return;
    };
    let config = CONFIG.replace(
        "[output.syslog]",
        "[output.messages.rotation]\nkeep = 1\n\n[output.syslog]",
    );
    let daemon = Daemon::start(&config);
    let json = daemon.path("messages.json");
    // Sends a line and waits until it is in the live file, so each rotation falls after it.
    let send = |msg: &str| {
        let sock = daemon.path("log.sock");
        logger(&["-u", sock.to_str().unwrap(), "-t", "web-g", "--", msg]);
        crate::util::wait_until(
            &format!("{msg:?} in {}", json.display()),
            || {
                std::fs::read_to_string(&json)
                    .unwrap_or_default()
                    .contains(msg)
            },
            || daemon.log(),
        );
    };
    let rotate = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_logwell"))
            .args(["rotate", "messages", "--socket"])
            .arg(daemon.path("control.sock"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    send("old line");
    browser.goto(&format!("http://127.0.0.1:{}/", daemon.port));
    let msgs = |s: &Value| -> Vec<String> { rows_of(s).into_iter().map(|r| r.2).collect() };
    browser.wait_for(
        "the old line",
        STATE,
        |s| s["status"] == "live" && msgs(s) == ["old line"],
        || daemon.log(),
    );
    browser.click("#pause");
    browser.wait_for(
        "paused",
        STATE,
        |s| s["status"] == "paused",
        || daemon.log(),
    );
    // "old line" and "lost line" are in the generation that keep = 1 deletes at the second
    // rotation.
    send("lost line");
    rotate();
    send("middle line");
    rotate();
    send("new line");
    browser.click("#pause");
    let state = browser.wait_for(
        "the gap, then the lines that are left",
        STATE,
        |s| s["status"] == "live" && msgs(s) == ["old line", "middle line", "new line"],
        || daemon.log(),
    );
    let notices = state["notices"].as_array().unwrap();
    assert_eq!(notices.len(), 1, "one gap note: {state:#}");
    assert!(
        notices[0].as_str().unwrap().contains("lost"),
        "the note says lines were lost: {state:#}"
    );
    let order = browser.execute(
        "return [...document.getElementById('log').children].map(e => e.dataset.notice ? 'gap' : e.querySelector('.m').textContent);",
        serde_json::json!([]),
    );
    assert_eq!(
        order,
        serde_json::json!(["old line", "gap", "middle line", "new line"]),
        "the note sits where the lines were lost"
    );
}

/// Issue 26: the bar shows the file inputs' lag (a last line without its newline is held
/// back, so it is the lag), each file's in its tooltip, and follows it as it changes.
#[test]
fn web_page_shows_the_lag_of_the_file_inputs() {
    let Some(browser) = Browser::start(1024, 700) else {
        return;
    };
    let config = CONFIG.replace(
        "[[rule]]",
        "[input.ext]\ntype = \"file\"\npaths = [\"{dir}/ext/*.log\"]\nfrom = \"head\"\n\n[[rule]]",
    );
    let daemon = Daemon::start_with(&config, |dir| {
        std::fs::create_dir(dir.join("ext")).unwrap();
        std::fs::write(dir.join("ext/app.log"), "read\nheld back").unwrap();
    });
    browser.goto(&format!("http://127.0.0.1:{}/", daemon.port));
    const LAG: &str = r#"
const lag = document.getElementById('lag');
return { hidden: lag.hidden, text: lag.textContent, title: lag.title };
"#;
    let state = browser.wait_for(
        "the lag of app.log in the bar",
        LAG,
        |s| s["hidden"] == false && s["text"] == "file inputs: 1 file, lag 9 B",
        || daemon.log(),
    );
    let title = state["title"].as_str().unwrap();
    assert!(
        title.starts_with("ext: ") && title.contains("/ext/app.log: lag 9 B (5 of 14)"),
        "{state:#}"
    );
    // The newline comes: read again within seconds, the lag is gone.
    std::fs::OpenOptions::new()
        .append(true)
        .open(daemon.path("ext/app.log"))
        .map(|mut f| std::io::Write::write_all(&mut f, b"\n"))
        .unwrap()
        .unwrap();
    browser.wait_for(
        "the lag back to 0",
        LAG,
        |s| s["text"] == "file inputs: 1 file, lag 0 B",
        || daemon.log(),
    );
}
