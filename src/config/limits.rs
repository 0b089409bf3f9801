//! The limits of a network input (udp, tcp, tls) as settings: `permit`,
//! `max_connections_per_peer`, `rate_limit_per_sec`, `rate_limit_burst`, `rate_limit_peers`,
//! `frame_timeout_secs` and `ipv6_peer_prefix_bits`, validated from the raw config into
//! [`Limits`]. What enforces them at run time is `crate::input::limits`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::check::Check;
use super::raw::RawInput;

/// The default `rate_limit_peers`.
pub const DEFAULT_RATE_LIMIT_PEERS: usize = 10_000;

/// The default `ipv6_peer_prefix_bits`: a /64, the smallest block commonly given to one host
/// or one LAN.
pub const DEFAULT_IPV6_PEER_PREFIX_BITS: u8 = 64;

/// The default `frame_timeout_secs` of tcp and tls inputs: a sender finishes a frame it has
/// started within a minute (syslog-ng's and rsyslog's senders write whole frames at once).
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(60);

/// The default `idle_timeout_secs` of tcp and tls inputs: ten minutes, long enough for a
/// quiet host's forwarder (which reconnects by itself) to keep its connection between
/// messages, short enough that forgotten connections do not hold slots for ever.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// The default `max_connections_per_peer` of tcp and tls inputs with `max_connections`: a
/// quarter of the slots, at least 16 (never more than `max_connections`), so one peer cannot
/// take every slot.
pub fn default_connections_per_peer(max_connections: usize) -> usize {
    (max_connections / 4).max(16).min(max_connections)
}

/// The limits of one network input, validated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Limits {
    /// Peers allowed to send; everyone when empty.
    pub permit: Vec<Cidr>,
    /// Connections one peer IP may hold at once (tcp, tls).
    pub max_connections_per_peer: Option<usize>,
    /// Messages per second per peer IP.
    pub rate: Option<RateLimit>,
    /// Close a connection whose incomplete frame waits longer than this (tcp, tls).
    pub frame_timeout: Option<Duration>,
    /// IPv6 peers in one block of this many bits are one peer; `None`:
    /// [`DEFAULT_IPV6_PEER_PREFIX_BITS`].
    pub ipv6_peer_prefix_bits: Option<u8>,
}

impl Limits {
    /// Whether any limit is set (else the input runs without a [`Limiter`](crate::input::limits::Limiter)).
    pub fn any(&self) -> bool {
        !self.permit.is_empty()
            || self.max_connections_per_peer.is_some()
            || self.rate.is_some()
            || self.frame_timeout.is_some()
    }
}

/// A token bucket's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Tokens added per second.
    pub per_sec: u32,
    /// Bucket size.
    pub burst: u32,
    /// Most peers remembered at once.
    pub peers: usize,
}

/// An address block: `10.0.0.0/8`, `::1` (a single address is a full-length block).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cidr {
    /// An IPv4 block: network and prefix length.
    V4(u32, u8),
    /// An IPv6 block: network and prefix length.
    V6(u128, u8),
}

impl Cidr {
    /// Parses `ADDRESS` or `ADDRESS/BITS`. Host bits set in the address are ignored.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
            None => (s, None),
        };
        match addr.parse::<IpAddr>().ok()? {
            IpAddr::V4(a) => {
                let bits = bits.unwrap_or(32);
                (bits <= 32).then(|| Cidr::V4(u32::from(a) & mask32(bits), bits))
            }
            IpAddr::V6(a) => {
                let bits = bits.unwrap_or(128);
                (bits <= 128).then(|| Cidr::V6(u128::from(a) & mask128(bits), bits))
            }
        }
    }

    /// Whether `ip` is in the block; an IPv4-mapped IPv6 address matches IPv4 blocks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip.to_canonical()) {
            (Cidr::V4(net, bits), IpAddr::V4(a)) => u32::from(a) & mask32(*bits) == *net,
            (Cidr::V6(net, bits), IpAddr::V6(a)) => u128::from(a) & mask128(*bits) == *net,
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cidr::V4(n, b) => write!(f, "{}/{b}", Ipv4Addr::from(*n)),
            Cidr::V6(n, b) => write!(f, "{}/{b}", Ipv6Addr::from(*n)),
        }
    }
}

fn mask32(bits: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0)
}

/// The mask of an IPv6 prefix of `bits` bits.
pub fn mask128(bits: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0)
}

fn span_of<T>(o: &Option<Spanned<T>>) -> Option<Range<usize>> {
    o.as_ref().map(Spanned::span)
}

/// A positive integer no larger than `max`, or an error at its place.
fn number(check: &mut Check<'_>, v: &Option<Spanned<i64>>, key: &str, max: i64) -> Option<u64> {
    let v = v.as_ref()?;
    let n = *v.get_ref();
    if n > 0 && n <= max {
        Some(n as u64)
    } else {
        check.err(
            v.span(),
            format!("`{key}` must be a number from 1 to {max}"),
            "remove the key to leave it unlimited",
        );
        None
    }
}

/// Validates the limit keys of `[input.NAME]`; refuses them on inputs they do not apply to.
/// A tcp or tls input gets the default frame timeout and per-peer cap for `max_connections`
/// where the keys are absent.
pub(crate) fn from_raw(check: &mut Check<'_>, raw: &RawInput, max_connections: usize) -> Limits {
    let kind = raw.kind.get_ref().as_str();
    let keys = [
        ("permit", span_of(&raw.permit), true),
        (
            "max_connections_per_peer",
            span_of(&raw.max_connections_per_peer),
            false,
        ),
        ("rate_limit_per_sec", span_of(&raw.rate_limit_per_sec), true),
        ("rate_limit_burst", span_of(&raw.rate_limit_burst), true),
        ("rate_limit_peers", span_of(&raw.rate_limit_peers), true),
        (
            "frame_timeout_secs",
            span_of(&raw.frame_timeout_secs),
            false,
        ),
        (
            "ipv6_peer_prefix_bits",
            span_of(&raw.ipv6_peer_prefix_bits),
            true,
        ),
    ];
    match kind {
        "tcp" | "tls" => {}
        "udp" => {
            for (key, span, datagram_too) in &keys {
                if !datagram_too {
                    check.not_for(
                        span.clone(),
                        key,
                        kind,
                        "datagram inputs have no connections; remove it",
                    );
                }
            }
        }
        _ => {
            for (key, span, _) in keys {
                check.not_for(
                    span,
                    key,
                    kind,
                    "limits apply to udp, tcp and tls inputs (local peers are trusted); remove it",
                );
            }
            return Limits::default();
        }
    }
    let mut permit = Vec::new();
    if let Some(p) = &raw.permit {
        for entry in p.get_ref().clone_vec() {
            match Cidr::parse(entry.trim()) {
                Some(c) => permit.push(c),
                None => check.err(
                    p.span(),
                    format!("`permit`: `{entry}` is not an address or address block"),
                    "write an address or ADDRESS/BITS, such as \"10.0.0.0/8\" or \"::1\"",
                ),
            }
        }
    }
    let per_peer = number(
        check,
        &raw.max_connections_per_peer,
        "max_connections_per_peer",
        1_000_000,
    );
    let per_sec = number(
        check,
        &raw.rate_limit_per_sec,
        "rate_limit_per_sec",
        1_000_000_000,
    );
    let burst = number(
        check,
        &raw.rate_limit_burst,
        "rate_limit_burst",
        1_000_000_000,
    );
    let peers = number(check, &raw.rate_limit_peers, "rate_limit_peers", 10_000_000);
    if per_sec.is_none() {
        for (key, span) in [
            ("rate_limit_burst", span_of(&raw.rate_limit_burst)),
            ("rate_limit_peers", span_of(&raw.rate_limit_peers)),
        ] {
            if let (Some(span), None) = (span, &raw.rate_limit_per_sec) {
                check.err(
                    span,
                    format!("`{key}` needs `rate_limit_per_sec`"),
                    "set `rate_limit_per_sec` (messages per second per peer) or remove it",
                );
            }
        }
    }
    let rate = per_sec.map(|r| RateLimit {
        per_sec: r as u32,
        burst: burst.unwrap_or(r) as u32,
        peers: peers.map_or(DEFAULT_RATE_LIMIT_PEERS, |p| p as usize),
    });
    let frame_timeout = number(check, &raw.frame_timeout_secs, "frame_timeout_secs", 86_400)
        .map(Duration::from_secs);
    let ipv6_peer_prefix_bits = number(
        check,
        &raw.ipv6_peer_prefix_bits,
        "ipv6_peer_prefix_bits",
        128,
    )
    .map(|n| n as u8);
    let streams = matches!(kind, "tcp" | "tls");
    Limits {
        permit,
        max_connections_per_peer: per_peer
            .map(|n| n as usize)
            .or_else(|| streams.then(|| default_connections_per_peer(max_connections))),
        rate,
        frame_timeout: frame_timeout.or_else(|| streams.then_some(DEFAULT_FRAME_TIMEOUT)),
        ipv6_peer_prefix_bits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_and_match() {
        let net = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.1.2.3")));
        assert!(net.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped");
        assert!(!net.contains(ip("11.0.0.1")));
        let one = Cidr::parse("::1").unwrap();
        assert!(one.contains(ip("::1")));
        assert!(!one.contains(ip("127.0.0.1")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("1.2.3.4")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("::2")));
        assert_eq!(Cidr::parse("10.1.2.3/8"), Cidr::parse("10.0.0.0/8"));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "example.com",
            "10.0.0/8",
            "1.2.3.4/",
            "",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }
}
