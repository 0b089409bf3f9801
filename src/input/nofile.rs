//! The process's descriptor limit (`RLIMIT_NOFILE`) and what it leaves for connections.
//!
//! systemd starts services with a soft limit of 1024 and a much higher hard limit; a daemon
//! that never raises the soft limit runs out of descriptors (`accept failed … EMFILE`,
//! `cannot rotate … Too many open files`) at the default `max_connections` (1024).
//! [`raise_at_start`] raises the soft limit to the hard limit once, before anything is
//! opened; [`connection_cap`] then keeps [`RESERVED_DESCRIPTORS`] free of connections for
//! output files, rotation, compression, the control socket and the follow service.
//!
//! This module owns no socket and no configuration: it reads and sets the limit, and it
//! answers how many connections one input may hold.

use std::io;

/// Descriptors kept free of stream connections: output files and their rotation, the
/// compressor, templated outputs' open files, the control socket, the follow service.
pub const RESERVED_DESCRIPTORS: u64 = 256;

/// The most descriptors Linux gives a process when the hard limit is unlimited
/// (`/proc/sys/fs/nr_open`'s default).
const NR_OPEN_DEFAULT: u64 = 1 << 20;

/// Why the descriptor limit could not be read or raised.
#[derive(Debug, thiserror::Error)]
pub enum NofileError {
    /// `getrlimit` failed.
    #[error("cannot read the descriptor limit (RLIMIT_NOFILE): {0}")]
    Get(#[source] io::Error),
    /// `setrlimit` failed.
    #[error(
        "cannot raise the soft descriptor limit from {soft} to {hard}: {source}; \
         set LimitNOFILE= in the systemd unit (or `ulimit -n` before starting logwelld)"
    )]
    Set {
        /// The soft limit, left as it was.
        soft: u64,
        /// The hard limit asked for.
        hard: u64,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// The soft and hard `RLIMIT_NOFILE`.
pub fn get() -> Result<(u64, u64), NofileError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `lim`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(NofileError::Get(io::Error::last_os_error()));
    }
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (to `/proc/sys/fs/nr_open` when the
/// hard limit is unlimited); returns the soft limit now in force.
pub fn raise_soft_limit() -> Result<u64, NofileError> {
    let (soft, hard) = get()?;
    let target = if hard == libc::RLIM_INFINITY {
        std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(NR_OPEN_DEFAULT)
    } else {
        hard
    };
    if soft != libc::RLIM_INFINITY && soft >= target {
        return Ok(soft);
    }
    let lim = libc::rlimit {
        rlim_cur: target,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads one rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(NofileError::Set {
            soft,
            hard: target,
            source: io::Error::last_os_error(),
        });
    }
    Ok(target)
}

/// Raises the soft limit at start and logs the outcome; a failure leaves the limit as it
/// was (inputs are then capped by [`connection_cap`]).
pub fn raise_at_start() {
    match raise_soft_limit() {
        Ok(n) => tracing::debug!(nofile = n, "descriptor limit"),
        Err(e) => tracing::warn!(error = %e, "descriptor limit not raised"),
    }
}

/// How many connections an input configured for `configured` may hold with a soft limit of
/// `nofile` descriptors: never more than what is left after [`RESERVED_DESCRIPTORS`], and
/// at least one.
pub fn cap(configured: usize, nofile: u64) -> usize {
    let room = nofile.saturating_sub(RESERVED_DESCRIPTORS).max(1);
    configured.min(usize::try_from(room).unwrap_or(usize::MAX))
}

/// The `max_connections` input `input` gets under the current soft limit, with a warning
/// when it is less than `configured`.
pub fn connection_cap(input: &str, configured: usize) -> usize {
    let Ok((soft, _)) = get() else {
        return configured;
    };
    let n = cap(configured, soft);
    if n < configured {
        tracing::warn!(input, max_connections = configured, effective = n, nofile = soft, reserved = RESERVED_DESCRIPTORS, "max_connections lowered to fit the descriptor limit; raise LimitNOFILE= in the systemd unit");
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 24 item 4: logwelld never raised systemd's soft limit of 1024, so 260 idle
    /// connections under a limit of 256 gave EMFILE on accept and on rotation.
    #[test]
    fn the_soft_descriptor_limit_is_raised_to_the_hard_limit() {
        let (_, hard) = get().unwrap();
        // Start from a low soft limit, as systemd gives.
        let low = libc::rlimit {
            rlim_cur: hard.min(512),
            rlim_max: hard,
        };
        // SAFETY: setrlimit reads one rlimit.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) }, 0);
        let now = raise_soft_limit().unwrap();
        let (soft, hard_after) = get().unwrap();
        assert_eq!(hard_after, hard);
        assert_eq!(soft, now);
        if hard != libc::RLIM_INFINITY {
            assert_eq!(soft, hard, "soft == hard after the raise");
        }
    }

    #[test]
    fn connections_leave_a_reserve_of_descriptors() {
        assert_eq!(cap(1024, 1024), 1024 - RESERVED_DESCRIPTORS as usize);
        assert_eq!(cap(1024, 65_536), 1024);
        assert_eq!(cap(10, 100), 1, "at least one");
        assert_eq!(cap(10, libc::RLIM_INFINITY), 10);
    }
}
