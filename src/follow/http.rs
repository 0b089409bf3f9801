//! The follow service over HTTP/1.1 (axum): `GET /v1/follow` (Server-Sent Events),
//! `/v1/files`, `/v1/status`, `/metrics`, and the live web page at `/`.
//!
//! One task per connection, each watching for shutdown. TLS (rustls), when configured, is
//! negotiated in that task with a timeout. The bearer token is taken from the
//! `Authorization` header or a `token` query parameter (a browser's `EventSource` cannot set
//! headers); the page itself holds no data and is served without one.

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
use tokio::net::TcpListener;

use super::request::Request;
use super::subscription::{now, Encoding};
use super::{Refusal, Service};

/// The live web page: one file, no build step, no CDN.
const PAGE: &str = include_str!("web/index.html");

/// hyper's read and write buffer per connection (request heads are far smaller).
const MAX_BUFFER: usize = 8 * 1024;

/// The peer of a connection, put into each request's extensions.
#[derive(Clone, Copy, Debug)]
struct Peer(SocketAddr);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = match self {
            Refusal::BadRequest(_) => StatusCode::BAD_REQUEST,
            Refusal::Unauthorized => StatusCode::UNAUTHORIZED,
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
    };
    super::accept_loop(listener, service, handler).await;
}

/// HTTP/1.1 on one connection, with the router.
#[derive(Clone)]
struct Http {
    app: Router,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl super::Serve for Http {
    async fn serve<S>(self, stream: S, peer: SocketAddr)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        connection(stream, peer, self.app, self.stop).await
    }
}

async fn connection<S>(
    stream: S,
    peer: SocketAddr,
    app: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(Peer(peer));
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

/// Token check and CORS, around every route.
async fn guard(State(service): State<Arc<Service>>, req: HttpRequest, next: Next) -> Response {
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
    axum::Json(serde_json::json!({ "files": service.registry().infos() }))
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
        .map(|p| p.0.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let mut request = Request::parse(req.uri().query().unwrap_or_default(), now())
        .map_err(|e| Refusal::BadRequest(e.0))?;
    // A reconnecting EventSource resumes just after the last event it got.
    if let Some(id) = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
    {
        if !id.is_empty() {
            let p = id
                .parse()
                .map_err(|e: crate::history::ParsePositionError| {
                    Refusal::BadRequest(e.to_string())
                })?;
            request.start = super::request::StartAt::After(p);
        }
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
