//! What a subscriber asks for, parsed from an HTTP query string or the one request line of a
//! raw TCP client (the same `key=value` pairs, separated by `&` or spaces). Pure: the current
//! time is passed in.
//!
//! Keys, named as `journalctl`'s options where one exists:
//!
//! | key | meaning |
//! |---|---|
//! | `file` | which file (default: the configured default file) |
//! | `n` | start with the last N lines (`all`: from the oldest line); default 10 |
//! | `since`, `S` | start at the first line at or after a time |
//! | `until`, `U` | stop after the last line before a time (history only) |
//! | `after` | resume just after a cursor (an SSE event id); `Last-Event-ID` does the same |
//! | `cursor` | start at the line whose cursor this is, that line included (journalctl's `--cursor`) |
//! | `p`, `priority` | `err`, or a range `warning..emerg` |
//! | `facility` | `auth,authpriv` |
//! | `t`, `tag` | program name (repeatable) |
//! | `host` | host name (repeatable) |
//! | `g`, `grep` | a regular expression on the message text |
//! | `o`, `format` | `short`, `short-iso`, `json`, `cat`, `raw` |
//! | `follow` | `true` (default) keeps streaming; `false` ends after the history |
//! | `heartbeat` | `comment` (default) or `json` (with counters) |
//! | `token` | the bearer token, for clients that cannot set a header |

use chrono::{DateTime, Duration, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};
use regex::Regex;

use crate::message::{Facility, Severity};
use crate::store::history::Position;

/// Where the history part of a subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// The last N lines.
    Last(u64),
    /// The oldest line of the file set.
    Beginning,
    /// The first line at or after a time.
    Since(DateTime<Utc>),
    /// Just after a line already received.
    After(Position),
    /// At a line already received (the one whose cursor this is), that line included.
    At(Position),
}

/// How lines are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// `Nov 21 09:41:03 host tag[pid]: msg`, local time, as `journalctl -o short`.
    Short,
    /// `2026-11-21T09:41:03+0100 host tag[pid]: msg`, as `journalctl -o short-iso`.
    ShortIso,
    /// One JSON object with every field, the cursor and the stored line.
    Json,
    /// The message text only.
    Cat,
    /// The line exactly as stored.
    Raw,
}

impl OutputFormat {
    /// Parses `-o`'s value.
    pub fn from_name(s: &str) -> Option<OutputFormat> {
        Some(match s {
            "short" => OutputFormat::Short,
            "short-iso" => OutputFormat::ShortIso,
            "json" => OutputFormat::Json,
            "cat" => OutputFormat::Cat,
            "raw" => OutputFormat::Raw,
            _ => return None,
        })
    }
}

/// What heartbeats look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heartbeat {
    /// An SSE comment (`: heartbeat`); nothing on raw TCP unless the format is JSON.
    Comment,
    /// An event (SSE) or line (TCP) with a JSON object of counters.
    Json,
}

/// Which lines pass. Every condition must hold; an empty list means any.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Severities from the most to the least severe allowed (inclusive), as codes.
    pub priority: Option<(u8, u8)>,
    /// Facilities allowed.
    pub facilities: Vec<Facility>,
    /// Program names allowed.
    pub tags: Vec<String>,
    /// Host names allowed.
    pub hosts: Vec<String>,
    /// A pattern the message text must match.
    pub grep: Option<Regex>,
    /// Lines stamped at or after this time are not sent.
    pub until: Option<DateTime<Utc>>,
}

impl Filter {
    /// Whether a filter needs the severity or facility, which some line formats lack.
    pub fn needs_priority(&self) -> bool {
        self.priority.is_some() || !self.facilities.is_empty()
    }

    /// Whether every line passes.
    pub fn is_empty(&self) -> bool {
        !self.needs_priority()
            && self.tags.is_empty()
            && self.hosts.is_empty()
            && self.grep.is_none()
            && self.until.is_none()
    }
}

/// A subscriber's whole request.
#[derive(Clone, Debug)]
pub struct Request {
    /// The file's name; `None` for the default file.
    pub file: Option<String>,
    /// Where history starts.
    pub start: StartAt,
    /// Which lines pass.
    pub filter: Filter,
    /// How lines are sent.
    pub format: OutputFormat,
    /// Keep streaming new lines after the history.
    pub follow: bool,
    /// Heartbeat style.
    pub heartbeat: Heartbeat,
    /// A token given in the request (when the client cannot send a header).
    pub token: Option<String>,
}

impl Default for Request {
    fn default() -> Request {
        Request {
            file: None,
            start: StartAt::Last(10),
            filter: Filter::default(),
            format: OutputFormat::Short,
            follow: true,
            heartbeat: Heartbeat::Comment,
            token: None,
        }
    }
}

/// A request that cannot be served; the message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RequestError(pub String);

fn bad(msg: impl Into<String>) -> RequestError {
    RequestError(msg.into())
}

impl Request {
    /// Parses a query string (`file=syslog&n=20&p=err`) or a TCP request line
    /// (`file=syslog n=20 p=err`). Percent-escapes are decoded in both.
    pub fn parse(query: &str, now: DateTime<Utc>) -> Result<Request, RequestError> {
        let normalized = query.trim().replace(' ', "&");
        let pairs: Vec<(String, String)> = form_urlencoded::parse(normalized.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .filter(|(k, _)| !k.is_empty())
            .collect();
        Request::from_pairs(&pairs, now)
    }

    /// Builds a request from decoded `key=value` pairs.
    pub fn from_pairs(
        pairs: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<Request, RequestError> {
        let mut r = Request::default();
        let mut n = None;
        let mut since = None;
        let mut after = None;
        let mut at = None;
        for (key, value) in pairs {
            let value = value.as_str();
            match key.as_str() {
                "file" => r.file = Some(value.to_string()).filter(|v| !v.is_empty()),
                "n" | "lines" => {
                    n = Some(if value == "all" || value == "+0" {
                        None
                    } else {
                        Some(value.parse::<u64>().map_err(|_| {
                            bad(format!("`n={value}` is not a number of lines (or `all`)"))
                        })?)
                    })
                }
                "since" | "S" => since = Some(parse_time(value, now)?),
                "until" | "U" => r.filter.until = Some(parse_time(value, now)?),
                "after" => {
                    after = Some(value.parse::<Position>().map_err(|e| bad(e.to_string()))?)
                }
                "cursor" => at = Some(value.parse::<Position>().map_err(|e| bad(e.to_string()))?),
                "p" | "priority" => r.filter.priority = Some(parse_priority(value)?),
                "facility" => {
                    for f in value.split(',').filter(|f| !f.is_empty()) {
                        r.filter.facilities.push(Facility::from_name(f).ok_or_else(|| {
                            bad(format!("unknown facility `{f}`: use kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, local0 … local7"))
                        })?);
                    }
                }
                "t" | "tag" | "identifier" => r.filter.tags.push(value.to_string()),
                "host" | "hostname" => r.filter.hosts.push(value.to_string()),
                "g" | "grep" => {
                    r.filter.grep = Some(
                        regex::RegexBuilder::new(value)
                            .size_limit(1 << 20)
                            .build()
                            .map_err(|e| bad(format!("`g`: not a regular expression: {e}")))?,
                    )
                }
                "o" | "format" | "output" => {
                    r.format = OutputFormat::from_name(value).ok_or_else(|| {
                        bad(format!("unknown format `{value}`: use short, short-iso, json, cat or raw"))
                    })?
                }
                "follow" | "f" => r.follow = parse_bool(key, value)?,
                "heartbeat" => {
                    r.heartbeat = match value {
                        "comment" => Heartbeat::Comment,
                        "json" => Heartbeat::Json,
                        _ => return Err(bad(format!("`heartbeat={value}`: use comment or json"))),
                    }
                }
                "token" => r.token = Some(value.to_string()),
                other => {
                    return Err(bad(format!(
                        "unknown key `{other}`: use file, n, since, until, after, cursor, p, facility, t, host, g, format, follow, heartbeat or token"
                    )))
                }
            }
        }
        r.start = match (after.map(StartAt::After).or(at.map(StartAt::At)), since, n) {
            (Some(start), _, _) => start,
            (None, Some(t), _) => StartAt::Since(t),
            (None, None, Some(None)) => StartAt::Beginning,
            (None, None, Some(Some(n))) => StartAt::Last(n),
            (None, None, None) => StartAt::Last(10),
        };
        Ok(r)
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, RequestError> {
    match value {
        "" | "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(bad(format!("`{key}={value}`: use true or false"))),
    }
}

/// `err` (that and everything more severe), `warning..emerg` or `emerg..warning` (a
/// range, either way round), or numbers `0`..`7`: journalctl's `-p`.
pub fn parse_priority(s: &str) -> Result<(u8, u8), RequestError> {
    let one = |p: &str| {
        Severity::from_name(p).map(|s| s.code()).ok_or_else(|| {
            bad(format!(
                "unknown priority `{p}`: use emerg, alert, crit, err, warning, notice, info, debug or 0..7"
            ))
        })
    };
    match s.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            Ok((a.min(b), a.max(b)))
        }
        None => Ok((0, one(s)?)),
    }
}

/// A time as `journalctl --since` takes it: RFC 3339, `YYYY-MM-DD HH:MM[:SS]` or
/// `YYYY-MM-DD` (local time), `now`, `today`, `yesterday`, or relative `-1h`, `-30min`,
/// `-2d`, `1h ago`.
pub fn parse_time(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, RequestError> {
    let s = s.trim();
    let local_midnight = |days_back: i64| {
        let date = now.with_timezone(&Local).date_naive() - Duration::days(days_back);
        local(date.and_hms_opt(0, 0, 0).expect("midnight exists"))
    };
    match s {
        "now" => return Ok(now),
        "today" => return local_midnight(0),
        "yesterday" => return local_midnight(1),
        "tomorrow" => return local_midnight(-1),
        _ => {}
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return local(t);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return local(d.and_hms_opt(0, 0, 0).expect("midnight exists"));
    }
    let relative = s
        .strip_prefix('-')
        .or_else(|| s.strip_suffix(" ago").or_else(|| s.strip_suffix("ago")))
        .map(str::trim);
    if let Some(rel) = relative {
        let split = rel.find(|c: char| !c.is_ascii_digit()).unwrap_or(rel.len());
        let (num, unit) = rel.split_at(split);
        if let Ok(num) = num.parse::<i64>() {
            let secs = match unit.trim() {
                "s" | "sec" | "secs" | "second" | "seconds" => 1,
                "m" | "min" | "mins" | "minute" | "minutes" => 60,
                "h" | "hour" | "hours" => 3600,
                "d" | "day" | "days" => 86_400,
                "w" | "week" | "weeks" => 7 * 86_400,
                _ => 0,
            };
            if secs > 0 {
                if let Some(d) = num.checked_mul(secs).and_then(Duration::try_seconds) {
                    return Ok(now - d);
                }
            }
        }
    }
    Err(bad(format!(
        "`{s}` is not a time: use 2026-11-21T09:00:00Z, \"2026-11-21 09:00\", today, yesterday or -1h"
    )))
}

fn local(t: NaiveDateTime) -> Result<DateTime<Utc>, RequestError> {
    Local
        .from_local_datetime(&t)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| bad(format!("{t} does not exist in the local time zone")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-21T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn defaults_are_journalctl_f() {
        let r = Request::parse("", now()).unwrap();
        assert_eq!(r.start, StartAt::Last(10));
        assert!(r.follow);
        assert_eq!(r.format, OutputFormat::Short);
        assert!(r.filter.is_empty());
    }

    #[test]
    fn a_tcp_line_and_a_query_string_mean_the_same() {
        let a = Request::parse("file=auth n=5 p=warning..emerg t=sshd o=json", now()).unwrap();
        let b = Request::parse("file=auth&n=5&p=emerg..warning&t=sshd&o=json", now()).unwrap();
        for r in [a, b] {
            assert_eq!(r.file.as_deref(), Some("auth"));
            assert_eq!(r.start, StartAt::Last(5));
            assert_eq!(r.filter.priority, Some((0, 4)));
            assert_eq!(r.filter.tags, ["sshd"]);
            assert_eq!(r.format, OutputFormat::Json);
        }
    }

    #[test]
    fn priorities_as_journalctl() {
        assert_eq!(parse_priority("err").unwrap(), (0, 3));
        assert_eq!(parse_priority("3").unwrap(), (0, 3));
        assert_eq!(parse_priority("info..warning").unwrap(), (4, 6));
        assert!(parse_priority("loud")
            .unwrap_err()
            .0
            .contains("unknown priority `loud`"));
    }

    #[test]
    fn times_absolute_and_relative() {
        assert_eq!(
            parse_time("-1h", now()).unwrap(),
            now() - Duration::hours(1)
        );
        assert_eq!(
            parse_time("30min ago", now()).unwrap(),
            now() - Duration::minutes(30)
        );
        assert_eq!(
            parse_time("2026-11-21T09:00:00+01:00", now()).unwrap(),
            DateTime::parse_from_rfc3339("2026-11-21T08:00:00Z").unwrap()
        );
        assert!(parse_time("soonish", now()).is_err());
    }

    #[test]
    fn cursor_wins_over_n_and_since() {
        let r = Request::parse("n=3&since=-1h&after=00000000000000ff:42", now()).unwrap();
        assert_eq!(
            r.start,
            StartAt::After(Position {
                generation: 255,
                offset: 42
            })
        );
        let p = Position {
            generation: 255,
            offset: 42,
        };
        let r = Request::parse("n=3&cursor=00000000000000ff:42", now()).unwrap();
        assert_eq!(r.start, StartAt::At(p));
        assert_eq!(
            Request::parse("n=all", now()).unwrap().start,
            StartAt::Beginning
        );
    }

    #[test]
    fn mistakes_say_what_to_write() {
        for (q, want) in [
            ("n=ten", "not a number"),
            ("o=pretty", "unknown format"),
            ("colour=red", "unknown key `colour`"),
            ("g=(", "not a regular expression"),
            ("after=zz", "bad position"),
        ] {
            let e = Request::parse(q, now()).unwrap_err();
            assert!(e.0.contains(want), "{q}: {e}");
        }
    }
}
