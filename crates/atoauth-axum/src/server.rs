//! Serving the app with the limits a server on the open internet needs: a client that stalls
//! while sending its request headers or its body is cut off after a read timeout, and only so
//! many connections are open at once (the rest wait in the listen queue). Each request carries
//! its peer address (`ConnectInfo<SocketAddr>`), which the sign-in rate limit reads.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::tls::TlsConfig;

/// How long a client may stall, and how many connections may be open at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// The longest a client may take to send its request headers, and the longest a request
    /// body may pause between two pieces. Default 30 s.
    pub read_timeout: Duration,
    /// Connections open at once; more wait to be accepted. Default 1024.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            read_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

/// Serves `app` (HTTP/1.1) on `listener` until `shutdown` completes, then lets the requests in
/// flight finish.
///
/// # Errors
/// When accepting connections fails for good.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    run(listener, app, limits, None, shutdown).await
}

/// [`serve`] over TLS (HTTPS). A client gets [`ServerLimits::read_timeout`] for the TLS
/// handshake too; one that fails the handshake is dropped without a word.
///
/// # Errors
/// When accepting connections fails for good.
pub async fn serve_tls(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    tls: TlsConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server);
    run(listener, app, limits, Some(acceptor), shutdown).await
}

async fn run(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let app = app.layer(RequestBodyTimeoutLayer::new(limits.read_timeout));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop, stopping) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // A free slot first: beyond the limit, new connections wait in the kernel's queue.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // A failed accept (a client gone, descriptors short) is not the end of the server.
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let stopping = stopping.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            match tls {
                None => connection(stream, peer, app, limits, stopping).await,
                // The handshake runs on the connection's task, so a slow one holds up no one.
                Some(acceptor) => {
                    match tokio::time::timeout(limits.read_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => connection(stream, peer, app, limits, stopping).await,
                        Ok(Err(error)) => tracing::debug!(%error, %peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(slot);
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Serves one connection until it closes, or gracefully once the server is stopping.
async fn connection<S>(
    stream: S,
    peer: SocketAddr,
    app: Router,
    limits: ServerLimits,
    mut stopping: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(request.map(axum::body::Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.read_timeout);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, %peer, "connection closed");
            }
        }
        _ = stopping.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}
