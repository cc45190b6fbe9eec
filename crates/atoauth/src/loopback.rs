//! The loopback redirect of a command-line or desktop app (RFC 8252 §7.3): listen on
//! 127.0.0.1 — never 0.0.0.0 — on a free port, wait for the browser to come back to
//! `/callback`, and answer it with a page saying the tab can be closed.
//!
//! ```no_run
//! # async fn demo(client: atoauth::OAuthClient) -> Result<(), atoauth::OAuthError> {
//! use std::time::Duration;
//! use atoauth::AuthorizeOptions;
//! use atoauth::loopback::CallbackServer;
//!
//! let server = CallbackServer::bind().await?;
//! let options = AuthorizeOptions::default().redirect_uri(server.redirect_uri());
//! let url = client.start_authorization("alice.bsky.social", options).await?;
//! println!("open {url}");
//! let params = server.wait(Duration::from_secs(300)).await?;
//! let session = client.complete_authorization(params).await?.session;
//! # Ok(()) }
//! ```

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::client::CallbackParams;

/// The path the browser comes back to; the loopback client's redirect URI
/// (`http://127.0.0.1/callback`, any port, C4) uses the same.
pub const CALLBACK_PATH: &str = "/callback";

/// The largest request head read from the browser.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// The page the browser gets once the redirect arrived.
const CLOSE_PAGE: &str = "<!doctype html><meta charset=utf-8><title>Signed in</title>\
<body style=\"font-family:sans-serif;margin:3em\"><h1>You can close this tab.</h1>\
<p>The app received the answer.</p></body>";

/// Why the loopback redirect did not arrive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoopbackError {
    /// No port on 127.0.0.1 could be bound.
    #[error("cannot listen on 127.0.0.1 for the browser's redirect")]
    Bind(#[source] std::io::Error),
    /// The browser did not come back in time.
    #[error("no answer from the browser within {} s", .0.as_secs())]
    TimedOut(Duration),
    /// The browser came back without any parameters.
    #[error("the browser came back without any parameters")]
    NoParameters,
    /// Accepting a connection failed.
    #[error("the loopback listener failed")]
    Accept(#[source] std::io::Error),
}

/// A one-shot listener for the browser's redirect on 127.0.0.1.
#[derive(Debug)]
pub struct CallbackServer {
    listener: TcpListener,
    redirect_uri: String,
}

impl CallbackServer {
    /// Listens on a free port of 127.0.0.1.
    ///
    /// # Errors
    /// [`LoopbackError::Bind`].
    pub async fn bind() -> Result<Self, LoopbackError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(LoopbackError::Bind)?;
        let port = listener.local_addr().map_err(LoopbackError::Bind)?.port();
        Ok(Self {
            listener,
            redirect_uri: format!("http://127.0.0.1:{port}{CALLBACK_PATH}"),
        })
    }

    /// The redirect URI to send with the authorization: `http://127.0.0.1:<port>/callback`.
    #[must_use]
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Waits up to `timeout` for the browser's `GET /callback?…` (other paths get 404), answers
    /// it with a page, and returns its parameters.
    ///
    /// # Errors
    /// [`LoopbackError::TimedOut`], [`LoopbackError::NoParameters`], or a listener failure.
    pub async fn wait(self, timeout: Duration) -> Result<CallbackParams, LoopbackError> {
        tokio::time::timeout(timeout, self.first_callback())
            .await
            .map_err(|_| LoopbackError::TimedOut(timeout))?
    }

    async fn first_callback(&self) -> Result<CallbackParams, LoopbackError> {
        loop {
            let (mut stream, _) = self
                .listener
                .accept()
                .await
                .map_err(LoopbackError::Accept)?;
            // A client that never sends its request does not hold up the real browser.
            let Ok(target) =
                tokio::time::timeout(Duration::from_secs(10), request_target(&mut stream)).await
            else {
                continue;
            };
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            if path != CALLBACK_PATH {
                answer(&mut stream, "404 Not Found", "").await;
                continue;
            }
            answer(&mut stream, "200 OK", CLOSE_PAGE).await;
            if query.is_empty() {
                return Err(LoopbackError::NoParameters);
            }
            return Ok(CallbackParams::from_query(query));
        }
    }
}

/// The request target of a `GET` (the redirect has no body); empty for anything else.
async fn request_target(stream: &mut TcpStream) -> String {
    let mut buffer = vec![0_u8; MAX_HEAD_BYTES];
    let mut read = 0;
    while read < buffer.len() && !buffer[..read].windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer[read..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    String::from_utf8_lossy(&buffer[..read])
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("GET "))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_default()
        .to_owned()
}

/// Answers and closes. The page names no one, is never cached, never framed, and sends no
/// `Referer` (the URL it was loaded from carried the code).
async fn answer(stream: &mut TcpStream, status: &str, page: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nreferrer-policy: no-referrer\r\nx-content-type-options: nosniff\r\n\
         content-security-policy: default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'\r\n\
         connection: close\r\n\r\n{page}",
        page.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(url: &str) -> String {
        let address = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let path = url.splitn(4, '/').nth(3).unwrap_or_default();
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream
            .write_all(format!("GET /{path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    #[tokio::test]
    async fn the_first_callback_gives_its_parameters_and_a_closing_page() {
        let server = CallbackServer::bind().await.unwrap();
        let uri = server.redirect_uri().to_owned();
        assert!(uri.starts_with("http://127.0.0.1:") && uri.ends_with("/callback"));
        let base = uri.trim_end_matches("/callback").to_owned();
        let waiting = tokio::spawn(server.wait(Duration::from_secs(10)));
        let other = get(&format!("{base}/favicon.ico")).await;
        assert!(other.starts_with("HTTP/1.1 404"), "{other}");
        let page = get(&format!(
            "{uri}?state=s1&code=c1&iss=https%3A%2F%2Fas.example"
        ))
        .await;
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        assert!(page.contains("referrer-policy: no-referrer"));
        let params = waiting.await.unwrap().unwrap();
        assert_eq!(params.iss.as_deref(), Some("https://as.example"));
        assert_eq!(
            params.code.map(|c| c.secret().to_owned()).as_deref(),
            Some("c1")
        );
    }

    #[tokio::test]
    async fn no_browser_in_time_is_a_typed_timeout() {
        let server = CallbackServer::bind().await.unwrap();
        let error = server.wait(Duration::from_millis(50)).await.unwrap_err();
        assert!(matches!(error, LoopbackError::TimedOut(_)), "{error}");
    }
}
