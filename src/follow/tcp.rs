//! The follow service over raw TCP, for `nc host port`: a client may send one request line
//! (`file=auth n=50 p=err o=json`, the keys of `/v1/follow`), then receives lines.
//!
//! A client that sends nothing within [`REQUEST_WAIT`] gets the default: the last 10 lines
//! of the default file, then every new line, in `short` format. When a token is configured
//! the request line is required and must carry `token=…`. A refused request gets one
//! `-- error: … --` line, then the connection is closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::request::Request;
use super::subscription::{now, Encoding};
use super::{Refusal, Service};

/// How long the server waits for an optional request line.
pub const REQUEST_WAIT: Duration = Duration::from_millis(300);

/// Time a client with a token to send has to send its request line.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest request line.
pub const MAX_REQUEST: u64 = 4096;

/// Serves raw TCP until the service stops; one task per connection.
pub async fn serve(listener: TcpListener, service: Arc<Service>) {
    super::accept_loop(listener, service.clone(), Raw(service)).await;
}

/// One raw TCP subscriber.
#[derive(Clone)]
struct Raw(Arc<Service>);

impl super::Serve for Raw {
    async fn serve<S>(self, stream: S, peer: SocketAddr, _local: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        connection(stream, peer, self.0).await
    }
}

async fn connection<S>(stream: S, peer: SocketAddr, service: Arc<Service>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (read, mut write) = tokio::io::split(stream);
    let mut reader = BufReader::new(read).take(MAX_REQUEST);
    let mut line = String::new();
    let wait = if service.settings.token.is_some() {
        REQUEST_TIMEOUT
    } else {
        REQUEST_WAIT
    };
    // Nothing within the wait: no request line, take the defaults.
    let _ = tokio::time::timeout(wait, reader.read_line(&mut line)).await;
    let request = Request::parse(&line, now()).map_err(|e| Refusal::BadRequest(e.0));
    let subscribed = match request {
        Ok(request) if !service.authorized(request.token.as_deref()) => Err(Refusal::Unauthorized),
        Ok(request) => {
            service
                .subscribe(request, super::Client::Ip(peer.ip()), Encoding::Lines)
                .await
        }
        Err(e) => Err(e),
    };
    let mut rx = match subscribed {
        Ok((rx, _)) => rx,
        Err(e) => {
            let _ = write
                .write_all(format!("-- error: {e} --\n").as_bytes())
                .await;
            let _ = write.shutdown().await;
            return;
        }
    };
    // Anything more the client sends is ignored. Its half-close (`nc -N`, stdin at its end)
    // only means it sends no more; a reset or a failed write ends the subscription.
    let mut reader = reader.into_inner();
    let mut sink = [0u8; 512];
    let mut reading = true;
    loop {
        tokio::select! {
            batch = rx.recv() => match batch {
                Some(b) => {
                    if write.write_all(&b).await.is_err() {
                        return;
                    }
                }
                None => {
                    let _ = write.shutdown().await;
                    return;
                }
            },
            n = reader.read(&mut sink), if reading => match n {
                Ok(0) => reading = false,
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }
}
