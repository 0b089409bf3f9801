//! Free loopback ports. A port is found by binding `127.0.0.1:0` and releasing it, so it is
//! free only until someone else binds it: this module never hands out the same port twice
//! in one process, because the tests run in parallel in one binary and a test may leave its
//! port unbound for a while (a receiver that is down, a daemon between a stop and its
//! restart) that the kernel would otherwise give to another test.

use std::net::{TcpListener, UdpSocket};
use std::sync::Mutex;

/// A port free for both TCP and UDP on 127.0.0.1, never one returned before in this process.
pub fn free_port() -> Result<u16, String> {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    for _ in 0..1000 {
        let tcp = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
        let port = tcp.local_addr().map_err(|e| e.to_string())?.port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) && UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return Ok(port);
        }
    }
    Err("no port free for both TCP and UDP on 127.0.0.1".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_port_is_given_twice() {
        let ports: Vec<u16> = (0..50).map(|_| super::free_port().unwrap()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len());
    }
}
