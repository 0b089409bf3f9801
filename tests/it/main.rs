//! logwell's integration tests: one binary, the real `logwelld` and `logwell` binaries, the
//! real util-linux `logger`, loopback ports and temporary sockets. Helpers are in `util`.

mod util;

mod bodies;
mod config;
mod conformance;
mod container;
mod degraded;
mod dropins;
mod file_input;
mod follow;
mod forward;
mod history;
mod http;
mod inputs;
mod journal;
#[cfg(feature = "kafka")]
mod kafka;
#[cfg(not(feature = "kafka"))]
mod kafka_disabled;
mod kmsg;
mod latency;
mod layers;
mod lifecycle;
mod limits;
mod load;
mod logger;
mod manpages;
mod packaging;
mod peers;
mod privsep;
mod relp;
mod rewrite;
mod rotation;
mod routing;
mod rsyslog;
mod systemd;
mod templated;
mod tls;
mod web;
mod webdriver;
