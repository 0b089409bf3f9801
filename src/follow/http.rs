//! The follow service over HTTP/1.1 (axum): `GET /v1/follow` (Server-Sent Events),
//! `/v1/files`, `/v1/status`, `/metrics`, and the live web page at `/`.
//!
//! One task per connection, each watching for shutdown. TLS (rustls), when configured, is
//! negotiated in that task with a timeout. The bearer token is taken from the
//! `Authorization` header or a `token` query parameter (a browser's `EventSource` cannot set
//! headers); the page itself holds no data and is served without one.
//!
//! On TCP, a request whose `Host` is neither the listener's address (`IP:port`, and
//! `localhost:port` on loopback) nor one of `host_names` is refused with 421 before anything
//! else, so a page whose name was rebound to this host's address reads nothing (DNS
//! rebinding). The local Unix socket serves the same routes with no token and no `Host`
//! check: its clients are authorised by their credentials ([`super::local`]) and the others
//! get 403 with the reason.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request as HttpRequest, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, UnixListener};

use super::request::Request;
use super::subscription::{now, Encoding};
use super::{Refusal, Service};
use crate::store::history::Position;

/// The live web page: one file, no build step, no CDN.
const PAGE: &str = include_str!("web/index.html");

/// hyper's read and write buffer per connection (request heads are far smaller).
const MAX_BUFFER: usize = 8 * 1024;

/// The peer of a connection, put into each request's extensions.
#[derive(Clone, Debug)]
enum Peer {
    /// A TCP client, and the address it reached.
    Tcp {
        remote: SocketAddr,
        local: SocketAddr,
        tls: bool,
    },
    /// A client of the local socket: its user, and the refusal when it may not read.
    Local { uid: u32, refused: Option<String> },
}

impl Peer {
    fn client(&self) -> super::Client {
        match self {
            Peer::Tcp { remote, .. } => super::Client::Ip(remote.ip()),
            Peer::Local { uid, .. } => super::Client::Local(*uid),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = match self {
            Refusal::BadRequest(_) => StatusCode::BAD_REQUEST,
            Refusal::Unauthorized => StatusCode::UNAUTHORIZED,
            Refusal::Forbidden(_) => StatusCode::FORBIDDEN,
            Refusal::MisdirectedHost(_) => StatusCode::MISDIRECTED_REQUEST,
            Refusal::NotFound(_) => StatusCode::NOT_FOUND,
            Refusal::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
        };
        let mut r = (
            status,
            axum::Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/index.html", get(page))
        .route("/v1/files", get(files))
        .route("/v1/follow", get(follow))
        .route("/v1/status", get(status))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(service.clone(), guard))
        .with_state(service)
}

/// Serves HTTP until the service stops; one task per connection.
pub async fn serve(listener: TcpListener, service: Arc<Service>) {
    let handler = Http {
        app: router(service.clone()),
        stop: service.stop.clone(),
        tls: service.settings.tls.is_some(),
    };
    super::accept_loop(listener, service, handler).await;
}

/// Serves HTTP on the local Unix socket until the service stops; one task per connection,
/// each told whether its client may read the logs.
pub async fn serve_local(listener: UnixListener, service: Arc<Service>) {
    let app = router(service.clone());
    let mut stop = service.stop.clone();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "follow service: accept failed on the local socket");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = super::stopped(&mut stop) => return,
        };
        let peer = match super::local::credentials(&stream) {
            Ok(c) => {
                let refused =
                    (!service.readers().allows(&c)).then(|| service.readers().refusal(&c));
                if refused.is_some() {
                    tracing::info!(
                        uid = c.uid,
                        "follow service: refused a local client not in group adm"
                    );
                }
                Peer::Local {
                    uid: c.uid,
                    refused,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "follow service: cannot read a local client's credentials");
                continue;
            }
        };
        tokio::spawn(connection(stream, peer, app.clone(), service.stop.clone()));
    }
}

/// HTTP/1.1 on one connection, with the router.
#[derive(Clone)]
struct Http {
    app: Router,
    stop: tokio::sync::watch::Receiver<bool>,
    tls: bool,
}

impl super::Serve for Http {
    async fn serve<S>(self, stream: S, remote: SocketAddr, local: SocketAddr)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let peer = Peer::Tcp {
            remote,
            local,
            tls: self.tls,
        };
        connection(stream, peer, self.app, self.stop).await
    }
}

async fn connection<S>(
    stream: S,
    peer: Peer,
    app: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(peer.clone());
            let mut app = app.clone();
            async move { tower_service::Service::call(&mut app, req).await }
        });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        // hyper would take up to ~400 KiB of a stream into its write buffer while the
        // socket is full: a stalled subscriber would cost that much memory and reading.
        .max_buf_size(MAX_BUFFER)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = super::stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

/// The `Host` check, the local client's authorisation, the token check and CORS, around
/// every route.
async fn guard(State(service): State<Arc<Service>>, req: HttpRequest, next: Next) -> Response {
    match req.extensions().get::<Peer>() {
        Some(Peer::Local {
            refused: Some(why), ..
        }) => return Refusal::Forbidden(why.clone()).into_response(),
        // Served by its credentials: no token, and no browser reaches a Unix socket.
        Some(Peer::Local { refused: None, .. }) => return next.run(req).await,
        Some(Peer::Tcp { local, tls, .. }) => {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok());
            if !host_allowed(host, *local, *tls, &service.settings.host_names) {
                return Refusal::MisdirectedHost(format!(
                    "this is the follow service at {local}, not `{}`: use that address, or add the name to `host_names` in [follow]",
                    host.unwrap_or("(no Host header)")
                ))
                .into_response();
            }
        }
        None => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
    let origin = req.headers().get(header::ORIGIN).cloned();
    let allowed = origin.as_ref().and_then(|o| {
        let o = o.to_str().ok()?;
        let list = &service.settings.cors_origins;
        (list.iter().any(|a| a == "*" || a == o)).then(|| HeaderValue::from_str(o).ok())?
    });
    let mut response = if req.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        let public = matches!(req.uri().path(), "/" | "/index.html");
        if !public && !service.authorized(token(req.headers(), req.uri().query()).as_deref()) {
            Refusal::Unauthorized.into_response()
        } else {
            next.run(req).await
        }
    };
    if let Some(origin) = allowed {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, last-event-id"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, OPTIONS"),
        );
    }
    response
}

/// The token from `Authorization: Bearer …` or `token=…`.
fn token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(t) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            return Some(t.trim().to_string());
        }
    }
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; img-src 'self' data:"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        PAGE,
    )
}

async fn files(State(service): State<Arc<Service>>) -> impl IntoResponse {
    let registry = service.registry();
    axum::Json(serde_json::json!({
        "files": registry.infos(),
        "watched": registry.watched(),
    }))
}

async fn status(State(service): State<Arc<Service>>) -> impl IntoResponse {
    axum::Json(service.status())
}

async fn metrics(State(service): State<Arc<Service>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        service.metrics(),
    )
}

async fn follow(
    State(service): State<Arc<Service>>,
    req: HttpRequest,
) -> Result<Response, Refusal> {
    let peer = req
        .extensions()
        .get::<Peer>()
        .map(Peer::client)
        .ok_or_else(|| Refusal::BadRequest("no peer".into()))?;
    let mut request = Request::parse(req.uri().query().unwrap_or_default(), now())
        .map_err(|e| Refusal::BadRequest(e.0))?;
    // A reconnecting EventSource resumes just after the last event it got.
    if let Some(p) = last_event_id(req.headers().get("last-event-id"))
        .map_err(|e| Refusal::BadRequest(e.to_string()))?
    {
        request.start = super::request::StartAt::After(p);
    }
    let (rx, _file) = service.subscribe(request, peer, Encoding::Sse).await?;
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Bytes::from(b)), rx))
    });
    // Sent at once, so a client sees the stream is open before the first line.
    let hello = futures_util::stream::once(async {
        Ok::<_, Infallible>(Bytes::from_static(b": logwell\n\n"))
    });
    use futures_util::StreamExt;
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(hello.chain(stream)),
    )
        .into_response())
}

/// The position a `Last-Event-ID` header asks to resume after: `None` when there is no
/// header, an empty one, or one that is not visible ASCII (ignored, as before); an error
/// when it is not a cursor. Pure, for the fuzz target.
#[doc(hidden)]
pub fn last_event_id(
    header: Option<&HeaderValue>,
) -> Result<Option<Position>, crate::store::history::ParsePositionError> {
    match header.and_then(|v| v.to_str().ok()) {
        Some(id) if !id.is_empty() => id.parse().map(Some),
        _ => Ok(None),
    }
}

/// Whether a request's `Host` names this listener: its address as the client reached it
/// (`local`, `IP:port`; the port may be left out when it is the scheme's default), or
/// `localhost` on a loopback address, or one of `names` (any port). Anything else, or no
/// `Host` at all, is what a page whose name was rebound to this address would send.
pub(crate) fn host_allowed(
    host: Option<&str>,
    local: SocketAddr,
    tls: bool,
    names: &[String],
) -> bool {
    let Some((name, port)) = host.and_then(split_host) else {
        return false;
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if names.iter().any(|n| n.trim_end_matches('.') == name) {
        return true;
    }
    let default_port = if tls { 443 } else { 80 };
    if port.unwrap_or(default_port) != local.port() {
        return false;
    }
    let ip = local.ip().to_canonical();
    match name.parse::<std::net::IpAddr>() {
        Ok(given) => given.to_canonical() == ip,
        Err(_) => name == "localhost" && ip.is_loopback(),
    }
}

/// `name[:port]` or `[v6]:port` into the name and the port; `None` when malformed.
fn split_host(host: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = host.strip_prefix('[') {
        let (name, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        return Some((name, port));
    }
    match host.split_once(':') {
        Some((name, port)) => Some((name, Some(port.parse().ok()?))),
        None => Some((host, None)),
    }
    .filter(|(name, _)| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(host: &str, local: &str, names: &[&str]) -> bool {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        host_allowed(Some(host), local.parse().unwrap(), false, &names)
    }

    #[test]
    fn the_host_must_be_the_listeners_address_or_a_configured_name() {
        assert!(allowed("127.0.0.1:8514", "127.0.0.1:8514", &[]));
        assert!(allowed("localhost:8514", "127.0.0.1:8514", &[]));
        assert!(allowed("LOCALHOST:8514", "127.0.0.1:8514", &[]));
        assert!(allowed("[::1]:8514", "[::1]:8514", &[]));
        assert!(allowed("localhost:8514", "[::1]:8514", &[]));
        // A listener on 0.0.0.0 is reached at one of the host's addresses.
        assert!(allowed("192.0.2.7:8514", "192.0.2.7:8514", &[]));
        assert!(allowed(
            "logs.example.com",
            "192.0.2.7:8514",
            &["logs.example.com"]
        ));
        assert!(allowed(
            "Logs.Example.com.:443",
            "192.0.2.7:8514",
            &["logs.example.com"]
        ));
        // DNS rebinding: the attacker's name, pointed at this address.
        assert!(!allowed("evil.example:8514", "127.0.0.1:8514", &[]));
        assert!(!allowed("127.0.0.1:9999", "127.0.0.1:8514", &[]));
        assert!(!allowed("127.0.0.2:8514", "127.0.0.1:8514", &[]));
        assert!(!allowed("localhost:8514", "192.0.2.7:8514", &[]));
        assert!(
            !allowed("127.0.0.1", "127.0.0.1:8514", &[]),
            "port 80 is not 8514"
        );
        assert!(allowed("127.0.0.1", "127.0.0.1:80", &[]));
        assert!(!allowed("", "127.0.0.1:8514", &[]));
        assert!(!allowed("[::1:8514", "[::1]:8514", &[]));
        assert!(!host_allowed(
            None,
            "127.0.0.1:8514".parse().unwrap(),
            false,
            &[]
        ));
        // A v4 client of a dual-stack socket reaches ::ffff:127.0.0.1.
        assert!(allowed("127.0.0.1:8514", "[::ffff:127.0.0.1]:8514", &[]));
    }
}
