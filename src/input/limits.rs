//! Limits on network inputs (udp, tcp, tls): who may send (`permit`), how many connections one
//! peer may hold (`max_connections_per_peer`), how fast one peer may send
//! (`rate_limit_per_sec`, `rate_limit_burst`, `rate_limit_peers`) and how long a peer may take
//! to finish a frame (`frame_timeout_secs`).
//!
//! This module owns the state shared by every task of one input ([`Limiter`]); the settings
//! ([`Limits`]) are validated by `config::limits`. It must not read sockets or touch the pipeline: the input loops ask it
//! questions ("may this peer connect?", "may this message pass?") and act on the answers.
//!
//! # Cost
//! An input without limits has no [`Limiter`] at all: its loops do not lock, look up or
//! allocate anything. `permit` alone costs a scan of a short list per connection or
//! datagram, without a lock. Only the per-peer counts and the rate buckets take a mutex.
//!
//! # Peers
//! A peer is an IPv4 address, or an IPv6 block of `ipv6_peer_prefix_bits` (64 by default):
//! one host commonly holds a whole /64, so keying by the full address would let it evade
//! `max_connections_per_peer` and the rate limit by changing addresses.
//!
//! # Rate limiting
//! One token bucket per peer (IPv4-mapped IPv6 addresses count as their IPv4 address), refilled at `rate_limit_per_sec` up to `rate_limit_burst`. A message that finds
//! the bucket empty is dropped and counted as `suppressed`. For TCP this drops messages the
//! sender considered delivered (as rsyslog's imtcp `ratelimit` does): slowing the reader
//! instead would only move the backlog into the sender, and a stuck sender is what the limit
//! protects against. All connections of one peer share its bucket.
//!
//! The buckets live in a map of at most `rate_limit_peers` entries. A peer whose bucket has
//! refilled (it has been idle at least `burst / rate` seconds) is forgotten: it would start
//! from a full bucket anyway. Such idle peers are swept once a minute and whenever the map is
//! full. If the map is still full after that sweep, the least recently seen quarter of the
//! peers is evicted, so a flood of distinct addresses costs a bounded map and amortised O(1)
//! work per message; an evicted peer that comes back starts with a full bucket.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::limits::{mask128, Cidr, Limits, RateLimit, DEFAULT_IPV6_PEER_PREFIX_BITS};
use crate::stats::InputStats;

/// How often a peer's suppressed messages are summed up in the log at most.
const SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

/// How often idle peers are swept from the rate buckets.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// How often refusals of one input are logged at most (with their count).
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// The state every task of one input shares to enforce its [`Limits`].
#[derive(Debug)]
pub struct Limiter {
    name: Arc<str>,
    stats: Arc<InputStats>,
    permit: Vec<Cidr>,
    per_peer: Option<(usize, Mutex<HashMap<IpAddr, usize>>)>,
    rate: Option<Mutex<Buckets>>,
    /// Close a connection whose incomplete frame waits longer than this.
    pub frame_timeout: Option<Duration>,
    refusals: Mutex<LogGate>,
    /// IPv6 peers are keyed by their block of this many bits.
    ipv6_prefix_bits: u8,
}

/// Why a peer was turned away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not in `permit`.
    NotPermitted,
    /// Already holds `max_connections_per_peer` connections.
    TooManyConnections,
}

/// Held by a connection while it counts against its peer's `max_connections_per_peer`.
#[derive(Debug)]
pub struct Admitted {
    limiter: Option<(Arc<Limiter>, IpAddr)>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some((l, ip)) = self.limiter.take() {
            if let Some((_, counts)) = &l.per_peer {
                let mut counts = counts.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(n) = counts.get_mut(&ip) {
                    *n -= 1;
                    if *n == 0 {
                        counts.remove(&ip);
                    }
                }
            }
        }
    }
}

/// Logs a flood of events as one line per interval with their count.
#[derive(Debug, Default)]
struct LogGate {
    last: Option<Instant>,
    pending: u64,
}

impl LogGate {
    /// Counts one event; returns how many to report now, if it is time.
    fn hit(&mut self, now: Instant, every: Duration) -> Option<u64> {
        self.pending += 1;
        match self.last {
            Some(t) if now.duration_since(t) < every => None,
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.pending))
            }
        }
    }
}

impl Limiter {
    /// The shared state for `limits`; `None` when no limit is set, so that the loops of an
    /// unlimited input pay nothing.
    pub fn new(limits: &Limits, name: Arc<str>, stats: Arc<InputStats>) -> Option<Arc<Limiter>> {
        limits.any().then(|| {
            Arc::new(Limiter {
                name,
                stats,
                permit: limits.permit.clone(),
                per_peer: limits
                    .max_connections_per_peer
                    .map(|n| (n, Mutex::new(HashMap::new()))),
                rate: limits.rate.map(|r| Mutex::new(Buckets::new(r))),
                frame_timeout: limits.frame_timeout,
                refusals: Mutex::new(LogGate::default()),
                ipv6_prefix_bits: limits
                    .ipv6_peer_prefix_bits
                    .unwrap_or(DEFAULT_IPV6_PEER_PREFIX_BITS),
            })
        })
    }

    /// The peer `ip` counts as: its IPv4 address (also when IPv4-mapped), or its IPv6 block
    /// of `ipv6_peer_prefix_bits`.
    pub fn peer(&self, ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(
                u128::from(a) & mask128(self.ipv6_prefix_bits),
            )),
            v4 => v4,
        }
    }

    /// Whether `ip` is in `permit` (everyone when it is empty).
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.permit.is_empty() || self.permit.iter().any(|c| c.contains(ip))
    }

    /// Decides on a new connection from `ip`. A refusal is counted and logged (at most once
    /// per second per input, with the count).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refusal> {
        let ip = ip.to_canonical();
        let refused = if !self.permits(ip) {
            Refusal::NotPermitted
        } else if let Some((max, counts)) = &self.per_peer {
            let mut counts = counts.lock().unwrap_or_else(|e| e.into_inner());
            let peer = self.peer(ip);
            let n = counts.entry(peer).or_insert(0);
            if *n < *max {
                *n += 1;
                return Ok(Admitted {
                    limiter: Some((self.clone(), peer)),
                });
            }
            Refusal::TooManyConnections
        } else {
            return Ok(Admitted { limiter: None });
        };
        self.refuse(ip, refused);
        Err(refused)
    }

    /// Counts and logs (rate-limited) one refused connection or datagram.
    pub fn refuse(&self, ip: IpAddr, why: Refusal) {
        self.stats.refused.fetch_add(1, Relaxed);
        let report = self
            .refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .hit(Instant::now(), REFUSAL_LOG_INTERVAL);
        if let Some(count) = report {
            let reason = match why {
                Refusal::NotPermitted => "the peer is not in `permit`",
                Refusal::TooManyConnections => "the peer has `max_connections_per_peer` open",
            };
            tracing::warn!(input = %self.name, peer = %ip, refused = count, "refused {count} connections or datagrams since the last report; the latest because {reason}");
        }
    }

    /// Whether a datagram from `ip` may pass `permit`; counts and logs it if not.
    pub fn datagram_permitted(&self, ip: IpAddr) -> bool {
        if self.permits(ip) {
            return true;
        }
        self.refuse(ip.to_canonical(), Refusal::NotPermitted);
        false
    }

    /// Takes one token from `ip`'s bucket: whether the message may pass. A suppressed one is
    /// counted; the log sums them up per peer.
    pub fn allow_message(&self, ip: IpAddr) -> bool {
        let Some(rate) = &self.rate else { return true };
        let (allowed, report) = rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(self.peer(ip), Instant::now());
        if !allowed {
            self.stats.suppressed.fetch_add(1, Relaxed);
        }
        if let Some((peer, n)) = report {
            tracing::warn!(input = %self.name, peer = %peer, suppressed = n, "{n} messages from {peer} suppressed (over rate_limit_per_sec)");
        }
        allowed
    }
}

/// Whether a message from `ip` passes the rate limit (always, without a limiter or a peer).
pub fn message_allowed(limiter: &Option<Arc<Limiter>>, ip: Option<IpAddr>) -> bool {
    match (limiter, ip) {
        (Some(l), Some(ip)) => l.allow_message(ip),
        _ => true,
    }
}

/// Since when a connection has held an incomplete frame, after one read: a completed frame
/// starts the clock again (for the rest in the buffer, if any); bytes that completed nothing
/// keep it running, whether they wait in the buffer or are being skipped (an over-long line).
pub fn partial_since(
    since: Option<tokio::time::Instant>,
    completed: bool,
    rest_in_buffer: bool,
) -> Option<tokio::time::Instant> {
    let now = tokio::time::Instant::now();
    match (completed, rest_in_buffer) {
        (true, true) => Some(now),
        (true, false) => None,
        (false, _) => since.or(Some(now)),
    }
}

/// Resolves when a frame incomplete since `since` has taken longer than `timeout`; never
/// without a timeout or an incomplete frame.
pub async fn frame_deadline(timeout: Option<Duration>, since: Option<tokio::time::Instant>) {
    match (timeout, since) {
        (Some(t), Some(s)) => tokio::time::sleep_until(s + t).await,
        _ => std::future::pending().await,
    }
}

/// One peer's token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    seen: Instant,
    /// Suppressed since the last summary line.
    suppressed: u64,
    reported: Instant,
}

/// Token buckets by peer, at most `limit.peers` of them (see the module doc for the policy).
#[derive(Debug)]
pub struct Buckets {
    limit: RateLimit,
    map: HashMap<IpAddr, Bucket>,
    last_sweep: Instant,
    /// Summaries of evicted peers, logged by the next `take`.
    evicted: Vec<(IpAddr, u64)>,
}

impl Buckets {
    /// Empty buckets for `limit`.
    pub fn new(limit: RateLimit) -> Buckets {
        Buckets {
            limit,
            map: HashMap::new(),
            last_sweep: Instant::now(),
            evicted: Vec::new(),
        }
    }

    /// Peers remembered now.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no peer is remembered.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// How long an untouched bucket takes to refill completely.
    fn refill_time(&self) -> Duration {
        Duration::from_secs_f64(f64::from(self.limit.burst) / f64::from(self.limit.per_sec))
    }

    /// Takes a token for `ip` at `now`: whether the message passes, and a summary line to log
    /// (peer, messages suppressed) when one is due.
    pub fn take(&mut self, ip: IpAddr, now: Instant) -> (bool, Option<(IpAddr, u64)>) {
        if now.duration_since(self.last_sweep) >= SWEEP_INTERVAL {
            self.sweep_idle(now);
        }
        if !self.map.contains_key(&ip) && self.map.len() >= self.limit.peers {
            self.make_room(now);
        }
        let (rate, burst) = (f64::from(self.limit.per_sec), f64::from(self.limit.burst));
        let b = self.map.entry(ip).or_insert(Bucket {
            tokens: burst,
            seen: now,
            suppressed: 0,
            reported: now,
        });
        let elapsed = now.duration_since(b.seen).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.seen = now;
        let allowed = b.tokens >= 1.0;
        if allowed {
            b.tokens -= 1.0;
        } else {
            b.suppressed += 1;
        }
        // Sum up when the peer resumes, or every SUMMARY_INTERVAL while it is suppressed.
        let mut report = None;
        if b.suppressed > 0 && (allowed || now.duration_since(b.reported) >= SUMMARY_INTERVAL) {
            report = Some((ip, std::mem::take(&mut b.suppressed)));
            b.reported = now;
        } else if b.suppressed == 0 {
            b.reported = now;
        }
        if report.is_none() {
            report = self.evicted.pop();
        }
        (allowed, report)
    }

    /// Forgets peers whose bucket has refilled: they would start full anyway.
    fn sweep_idle(&mut self, now: Instant) {
        self.last_sweep = now;
        let refill = self.refill_time();
        let evicted = &mut self.evicted;
        self.map.retain(|ip, b| {
            let idle = now.duration_since(b.seen) >= refill;
            if idle && b.suppressed > 0 && evicted.len() < 16 {
                evicted.push((*ip, b.suppressed));
            }
            !idle
        });
    }

    /// The map is full: sweep idle peers, then if fewer than a quarter left, evict the least
    /// recently seen quarter.
    fn make_room(&mut self, now: Instant) {
        self.sweep_idle(now);
        let target = self.limit.peers - self.limit.peers / 4 - 1;
        let target = target.min(self.limit.peers - 1);
        if self.map.len() <= target {
            return;
        }
        let mut seen: Vec<Instant> = self.map.values().map(|b| b.seen).collect();
        let excess = self.map.len() - target;
        // The `excess`-th oldest time: evict everything seen before or at it.
        let (_, cut, _) = seen.select_nth_unstable(excess - 1);
        let cut = *cut;
        let mut left = excess;
        self.map.retain(|_, b| {
            if left > 0 && b.seen <= cut {
                left -= 1;
                false
            } else {
                true
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn limit(per_sec: u32, burst: u32, peers: usize) -> RateLimit {
        RateLimit {
            per_sec,
            burst,
            peers,
        }
    }

    #[test]
    fn a_bucket_allows_the_burst_then_the_rate_and_sums_up() {
        let mut b = Buckets::new(limit(10, 5, 100));
        let t0 = Instant::now();
        let p = ip("192.0.2.1");
        let passed = (0..20).filter(|_| b.take(p, t0).0).count();
        assert_eq!(passed, 5);
        // 1 s later: 10 more tokens (capped at the burst of 5); the first take reports 15.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(b.take(p, t1), (true, Some((p, 15))));
        assert_eq!((0..10).filter(|_| b.take(p, t1).0).count(), 4);
        // Another peer has its own bucket.
        assert!(b.take(ip("192.0.2.2"), t1).0);
        // A long suppression is summed up every SUMMARY_INTERVAL even without a pass.
        let mut b = Buckets::new(limit(1, 1, 100));
        assert!(b.take(p, t0).0);
        let mut t = t0;
        let mut reported = 0;
        for _ in 0..100 {
            t += Duration::from_millis(1);
            if let (false, Some((_, n))) = b.take(p, t) {
                reported += n;
            }
        }
        assert_eq!(reported, 0, "not yet");
        let (_, r) = b.take(p, t0 + SUMMARY_INTERVAL + Duration::from_millis(200));
        assert!(r.is_some());
    }

    /// Issue 24 item 11: the limits were keyed per IPv6 address, so a host with a /64
    /// evaded them by changing addresses. IPv6 peers are keyed by a prefix, /64 by default.
    #[test]
    fn ipv6_peers_are_keyed_by_their_prefix() {
        let limiter = |bits: Option<u8>| {
            let limits = Limits {
                max_connections_per_peer: Some(1),
                rate: Some(RateLimit {
                    per_sec: 1,
                    burst: 1,
                    peers: 100,
                }),
                ipv6_peer_prefix_bits: bits,
                ..Limits::default()
            };
            Limiter::new(&limits, "net".into(), Arc::default()).unwrap()
        };
        let l = limiter(None);
        // Rate: one message per /64.
        assert!(l.allow_message(ip("2001:db8:0:1::1")));
        assert!(!l.allow_message(ip("2001:db8:0:1::2")), "same /64");
        assert!(!l.allow_message(ip("2001:db8:0:1:ffff:ffff:ffff:ffff")));
        assert!(l.allow_message(ip("2001:db8:0:2::1")), "another /64");
        assert_eq!(l.stats.suppressed.load(Relaxed), 2);
        // Connections per peer: one per /64, freed when it closes.
        let first = l.admit(ip("2001:db8:0:1::1")).unwrap();
        assert_eq!(
            l.admit(ip("2001:db8:0:1::7")).err(),
            Some(Refusal::TooManyConnections)
        );
        assert!(l.admit(ip("2001:db8:0:2::7")).is_ok());
        drop(first);
        assert!(l.admit(ip("2001:db8:0:1::7")).is_ok());
        // IPv4, also IPv4-mapped, is keyed by its address.
        assert!(l.allow_message(ip("192.0.2.1")));
        assert!(!l.allow_message(ip("::ffff:192.0.2.1")));
        assert!(l.allow_message(ip("192.0.2.2")));
        // Configurable: /128 is per address, /48 wider.
        let l = limiter(Some(128));
        assert!(l.allow_message(ip("2001:db8:0:1::1")));
        assert!(l.allow_message(ip("2001:db8:0:1::2")));
        let l = limiter(Some(48));
        assert!(l.allow_message(ip("2001:db8:0:1::1")));
        assert!(!l.allow_message(ip("2001:db8:0:2::1")));
        assert_eq!(l.peer(ip("2001:db8:0:2::1")), ip("2001:db8::"));
    }

    #[test]
    fn the_bucket_map_never_exceeds_its_bound() {
        let mut b = Buckets::new(limit(100, 100, 1_000));
        let t0 = Instant::now();
        for n in 0..100_000u32 {
            let t = t0 + Duration::from_micros(u64::from(n));
            b.take(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)), t);
            assert!(b.len() <= 1_000, "{} peers after {n}", b.len());
        }
        assert!(b.map.capacity() < 4_000, "memory stays bounded");
        // The most recent peers survive; a peer just seen is not evicted for a newcomer.
        let last = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + 99_999));
        assert!(b.map.contains_key(&last));
    }

    #[test]
    fn idle_peers_are_forgotten() {
        let mut b = Buckets::new(limit(10, 10, 1_000));
        let t0 = Instant::now();
        for n in 0..10u32 {
            b.take(IpAddr::V4(Ipv4Addr::from(n)), t0);
        }
        assert_eq!(b.len(), 10);
        // A minute later, every bucket has refilled (1 s): the sweep forgets them.
        b.take(ip("192.0.2.1"), t0 + SWEEP_INTERVAL);
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn the_log_gate_reports_once_per_interval_with_the_count() {
        let mut g = LogGate::default();
        let t0 = Instant::now();
        assert_eq!(g.hit(t0, Duration::from_secs(1)), Some(1));
        for k in 1..1000 {
            assert_eq!(
                g.hit(t0 + Duration::from_micros(k), Duration::from_secs(1)),
                None
            );
        }
        assert_eq!(
            g.hit(t0 + Duration::from_secs(1), Duration::from_secs(1)),
            Some(1000)
        );
    }
}
