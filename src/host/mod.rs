//! What logwell asks of the host, below every other layer: the file-system changes that
//! privilege separation carries to the privileged parent ([`fsops`]), the wire format of
//! those requests ([`proto`]), the worker's end of that channel ([`client`]), and the groups
//! the worker runs with ([`worker_groups`]). The daemon's fork, the parent's loop and its
//! policy live in `crate::daemon::privsep`, which imports this, never the other way round.

pub mod client;
pub mod fsops;
pub mod proto;

/// The worker's groups: its user's own (`gid`), `adm`, and `systemd-journal` when the
/// journal is read (`journal`); those that exist, sorted.
pub fn worker_groups(gid: u32, journal: bool) -> Vec<u32> {
    let group = |name: &str| {
        nix::unistd::Group::from_name(name)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw())
    };
    let mut groups: Vec<u32> = group("adm").into_iter().collect();
    if journal {
        groups.extend(group("systemd-journal"));
    }
    groups.push(gid);
    groups.sort_unstable();
    groups.dedup();
    groups
}
