//! Authenticated requests to the PDS (section O): DPoP with `ath` and the PDS nonce, the
//! session's PDS as the only target, one refresh-and-retry on `invalid_token` (O2), and XRPC
//! errors as typed errors — a missing scope carries the parsed permission (O3).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::OAuthSession;
use super::refresh::Reason;
use crate::engine::transport::{Replayable, Server};
use crate::error::{OAuthError, SessionEndCause};
use crate::http::{FetchLimits, Response};
use crate::scope::Permission;
use crate::syntax::Nsid;

impl OAuthSession {
    /// Uploads a blob (`com.atproto.repo.uploadBlob`) with its `Content-Type`, and returns the
    /// blob reference to put in a record (`{"$type": "blob", "ref": {"$link": …}, "mimeType",
    /// "size"}`). The body is sent as it is, without a copy on a nonce retry or a refresh; the
    /// PDS's size limit (5 MiB by default) applies.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn demo(session: atoauth::OAuthSession) -> Result<(), atoauth::OAuthError> {
    /// let png = std::fs::read("cat.png").unwrap_or_default();
    /// let blob = session.upload_blob(png, "image/png").await?;
    /// let embed = serde_json::json!({
    ///     "$type": "app.bsky.embed.images",
    ///     "images": [{"alt": "a cat", "image": blob}],
    /// });
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A `mime_type` that is not a header value, as [`OAuthSession::send`], the PDS's XRPC error
    /// (a missing `blob:` permission is [`OAuthError::ScopeMissing`]; too large is
    /// [`OAuthError::Xrpc`]), or an answer without a blob.
    pub async fn upload_blob(
        &self,
        body: impl Into<bytes::Bytes>,
        mime_type: &str,
    ) -> Result<Value, OAuthError> {
        let nsid = crate::nsid!("com.atproto.repo.uploadBlob");
        let content_type =
            http::HeaderValue::from_str(mime_type).map_err(|e| OAuthError::InvalidInput {
                input: mime_type.to_owned(),
                reason: format!("not a Content-Type: {e}"),
            })?;
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, content_type);
        headers.insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static("application/json"),
        );
        let response = self
            .send(
                http::Method::POST,
                "/xrpc/com.atproto.repo.uploadBlob",
                headers,
                body,
            )
            .await?;
        let mut answer = xrpc_result(&response)?;
        match answer.get_mut("blob").map(Value::take) {
            Some(blob) if blob.is_object() => Ok(blob),
            _ => Err(OAuthError::InvalidResponse {
                endpoint: nsid.to_string(),
                rule: "O4",
                reason: "the answer has no blob".to_owned(),
            }),
        }
    }
}

/// The header that sends an XRPC call on to another service through the PDS.
const ATPROTO_PROXY: http::HeaderName = http::HeaderName::from_static("atproto-proxy");

/// The body cap for XRPC responses (blobs can be large; metadata limits do not apply).
const XRPC_RESPONSE_LIMIT: usize = 64 * 1024 * 1024;

impl OAuthSession {
    /// Sends `method path` to the session's PDS with the access token, refreshing as needed.
    /// `path` is absolute (`/xrpc/…?…`); it cannot point elsewhere than the PDS. For JSON,
    /// [`OAuthSession::query`] and [`OAuthSession::procedure`] are shorter; this is for blobs
    /// and other bodies.
    ///
    /// # Examples
    /// Uploading an image:
    ///
    /// ```no_run
    /// use atoauth::reexports::http::{header, HeaderMap, HeaderValue, Method};
    ///
    /// # async fn demo(session: atoauth::OAuthSession, png: Vec<u8>) -> Result<(), atoauth::OAuthError> {
    /// let mut headers = HeaderMap::new();
    /// headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    /// let response = session
    ///     .send(Method::POST, "/xrpc/com.atproto.repo.uploadBlob", headers, png)
    ///     .await?;
    /// println!("{}: {}", response.status(), String::from_utf8_lossy(response.body()));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A path that leaves the PDS, network failures, or an ended session.
    pub async fn send(
        &self,
        method: http::Method,
        path: &str,
        mut headers: http::HeaderMap,
        body: impl Into<bytes::Bytes>,
    ) -> Result<Response, OAuthError> {
        if let Some(proxy) = &self.proxy
            && !headers.contains_key(ATPROTO_PROXY)
        {
            headers.insert(ATPROTO_PROXY, proxy.clone());
        }
        if self.needs_refresh() {
            self.refresh_for(Reason::Expiring).await?;
        }
        let pds = self.pds();
        let url = pds
            .join(path)
            .ok()
            .filter(|_| path.starts_with('/') && !path.starts_with("//"))
            .filter(|url| url.origin() == pds.origin())
            .ok_or_else(|| OAuthError::InvalidInput {
                input: path.to_owned(),
                reason: "not a path on the PDS".to_owned(),
            })?;
        let request = Replayable {
            method,
            url,
            headers,
            body: body.into(),
            limits: FetchLimits {
                max_body_bytes: XRPC_RESPONSE_LIMIT,
                redirects: 0,
                timeout: self
                    .inner
                    .client
                    .config()
                    .request_timeout
                    .unwrap_or(std::time::Duration::from_secs(30)),
            },
        };
        let mut refreshed = false;
        loop {
            let token = self.access_token();
            let response = self
                .inner
                .client
                .dpop_sender(self.inner.dpop.as_ref(), &self.inner.nonces)
                .send(Server::Resource, &request, Some(token.secret()))
                .await?;
            if !is_invalid_token(&response) {
                return Ok(response);
            }
            if refreshed {
                // O2: still refused after a refresh.
                return Err(self.end(SessionEndCause::TokenRejected).await);
            }
            refreshed = true;
            self.refresh_for(Reason::Rejected(token)).await?;
        }
    }

    /// An XRPC query (GET) with `params`, its JSON result read as `O` (a `serde_json::Value`,
    /// or your own type).
    ///
    /// # Examples
    /// ```no_run
    /// # async fn demo(session: atoauth::OAuthSession) -> Result<(), atoauth::OAuthError> {
    /// #[derive(serde::Deserialize)]
    /// struct Me { handle: String }
    /// let me: Me = session.query("com.atproto.server.getSession", &[]).await?;
    /// println!("{}", me.handle);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A malformed NSID, as [`OAuthSession::send`], the XRPC error the PDS answered, or a result
    /// that is not an `O`.
    pub async fn query<O: DeserializeOwned>(
        &self,
        nsid: impl IntoNsid,
        params: &[(&str, &str)],
    ) -> Result<O, OAuthError> {
        let nsid = nsid.into_nsid()?;
        let mut path = format!("/xrpc/{nsid}");
        if !params.is_empty() {
            path.push('?');
            path.push_str(
                &url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(params)
                    .finish(),
            );
        }
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static("application/json"),
        );
        let response = self
            .send(http::Method::GET, &path, headers, Vec::new())
            .await?;
        typed(&nsid, xrpc_result(&response)?)
    }

    /// An XRPC procedure (POST) with `input` as its JSON body, its result read as `O`
    /// (`serde_json::Value::Null` when the body is empty).
    ///
    /// # Examples
    /// ```no_run
    /// # async fn demo(session: atoauth::OAuthSession) -> Result<(), atoauth::OAuthError> {
    /// let record = serde_json::json!({
    ///     "repo": session.did(),
    ///     "collection": "app.bsky.feed.post",
    ///     "record": {"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2026-12-02T00:00:00Z"},
    /// });
    /// let created: serde_json::Value =
    ///     session.procedure("com.atproto.repo.createRecord", &record).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A malformed NSID, as [`OAuthSession::send`], the XRPC error the PDS answered, or a result
    /// that is not an `O`.
    pub async fn procedure<I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        nsid: impl IntoNsid,
        input: &I,
    ) -> Result<O, OAuthError> {
        let nsid = nsid.into_nsid()?;
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        headers.insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static("application/json"),
        );
        let body = serde_json::to_vec(input).map_err(|e| OAuthError::InvalidInput {
            input: nsid.to_string(),
            reason: e.to_string(),
        })?;
        let response = self
            .send(http::Method::POST, &format!("/xrpc/{nsid}"), headers, body)
            .await?;
        typed(&nsid, xrpc_result(&response)?)
    }
}

/// What names an XRPC method: an [`Nsid`], or a string checked when the call is made.
pub trait IntoNsid {
    /// The NSID.
    ///
    /// # Errors
    /// A malformed NSID.
    fn into_nsid(self) -> Result<Nsid, crate::syntax::SyntaxError>;
}

impl IntoNsid for Nsid {
    fn into_nsid(self) -> Result<Nsid, crate::syntax::SyntaxError> {
        Ok(self)
    }
}

impl IntoNsid for &Nsid {
    fn into_nsid(self) -> Result<Nsid, crate::syntax::SyntaxError> {
        Ok(self.clone())
    }
}

impl IntoNsid for &str {
    fn into_nsid(self) -> Result<Nsid, crate::syntax::SyntaxError> {
        Nsid::new(self)
    }
}

impl IntoNsid for &String {
    fn into_nsid(self) -> Result<Nsid, crate::syntax::SyntaxError> {
        Nsid::new(self)
    }
}

/// The JSON result as the caller's type.
fn typed<O: DeserializeOwned>(nsid: &Nsid, value: Value) -> Result<O, OAuthError> {
    serde_json::from_value(value).map_err(|e| OAuthError::InvalidResponse {
        endpoint: nsid.to_string(),
        rule: "O4",
        reason: format!("the result is not of the expected type: {e}"),
    })
}

fn is_invalid_token(response: &Response) -> bool {
    response.status() == http::StatusCode::UNAUTHORIZED
        && response
            .headers()
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("invalid_token"))
}

/// The typed error of an XRPC answer that is not a success: [`OAuthError::ScopeMissing`] when
/// the PDS refused for a missing permission (O3), else [`OAuthError::Xrpc`]. `None` for a
/// success. For apps and adapters that send with [`OAuthSession::send`] and read the answer
/// themselves.
#[must_use]
pub fn xrpc_error(response: &Response) -> Option<OAuthError> {
    if response.status().is_success() {
        return None;
    }
    xrpc_result(response).err()
}

/// The JSON body of a successful XRPC call, or its error as a typed error.
pub(crate) fn xrpc_result(response: &Response) -> Result<Value, OAuthError> {
    let body: Option<Value> = serde_json::from_slice(response.body()).ok();
    if response.status().is_success() {
        return Ok(body.unwrap_or(Value::Null));
    }
    let body = body.unwrap_or_default();
    let error = body
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("Unknown")
        .to_owned();
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .map(|m| m.chars().take(500).collect::<String>());
    if response.status() == http::StatusCode::FORBIDDEN
        && let Some(permission) = message.as_deref().and_then(missing_scope)
    {
        return Err(OAuthError::ScopeMissing {
            permission: Box::new(permission),
            message: message.unwrap_or_default(),
        });
    }
    Err(OAuthError::Xrpc(crate::error::XrpcError {
        status: response.status().as_u16(),
        error,
        message,
    }))
}

/// O3: the reference PDS says `Missing required scope "<scope>"`.
fn missing_scope(message: &str) -> Option<Permission> {
    let rest = message.split_once("Missing required scope")?.1;
    let quoted = rest.trim().strip_prefix('"')?;
    let (scope, _) = quoted.split_once('"')?;
    Permission::parse(&unmangle_reference_scope(scope)).ok()
}

/// The PDS writes that scope with the reference normal form, which puts `%` and `+` back
/// after encoding (permission spec §6.38): `did:web:localhost%3A8443` comes out as
/// `…localhost%3A8443`, read back as `localhost:8443`. The reference never writes the escapes
/// `%3A %2F %2B %2C %40 %25` (it puts those characters back), so such a sequence is a literal
/// `%`; and a `+` is a literal plus, never a space.
fn unmangle_reference_scope(scope: &str) -> String {
    let mut out = String::with_capacity(scope.len());
    let mut rest = scope;
    while let Some(c) = rest.chars().next() {
        let literal_percent = c == '%'
            && rest.get(1..3).is_some_and(|hex| {
                ["3A", "2F", "2B", "2C", "40", "25"].contains(&hex.to_ascii_uppercase().as_str())
            });
        match c {
            '%' if literal_percent || crate::scope::malformed_escape(rest) == Some(0) => {
                out.push_str("%25");
            }
            '+' => out.push_str("%2B"),
            _ => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        http::Response::builder()
            .status(status)
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    #[test]
    fn o4_a_result_of_another_shape_is_a_typed_error_naming_the_method() {
        #[derive(Debug, serde::Deserialize)]
        struct Me {
            #[allow(dead_code)]
            handle: String,
        }
        let nsid = Nsid::new("com.atproto.server.getSession").unwrap();
        let wrong = typed::<Me>(&nsid, serde_json::json!({"handle": 7})).unwrap_err();
        assert!(
            matches!(&wrong, OAuthError::InvalidResponse { rule: "O4", endpoint, .. } if endpoint == "com.atproto.server.getSession"),
            "{wrong}"
        );
        let me = typed::<Me>(&nsid, serde_json::json!({"handle": "alice.test"}));
        assert!(me.is_ok());
        assert!("not an nsid".into_nsid().is_err());
    }

    #[test]
    fn o3_missing_scope_becomes_a_typed_error_with_the_permission() {
        let error = xrpc_result(&response(
            403,
            r#"{"error":"ScopeMissingError","message":"Missing required scope \"repo:app.bsky.feed.post?action=delete\""}"#,
        ))
        .unwrap_err();
        let OAuthError::ScopeMissing { permission, .. } = error else {
            panic!("{error:?}");
        };
        assert_eq!(
            permission.to_string(),
            "repo:app.bsky.feed.post?action=delete"
        );
    }

    #[test]
    fn o3_the_pds_mangled_audiences_are_read_as_meant() {
        // The PDS's own text for aud did:web:localhost%3A8443#svc (permission spec §6.38).
        let permission = missing_scope(
            r#"Missing required scope "rpc:app.bsky.feed.getFeed?aud=did:web:localhost%3A8443%23svc""#,
        )
        .unwrap();
        assert_eq!(
            permission.to_string(),
            "rpc:app.bsky.feed.getFeed?aud=did:web:localhost%253A8443%23svc"
        );
        let blob = missing_scope(r#"Missing required scope "blob:application/vnd.api+json""#);
        assert_eq!(blob.unwrap().to_string(), "blob:application/vnd.api+json");
    }

    #[test]
    fn other_errors_keep_status_name_and_message() {
        let error = xrpc_result(&response(
            400,
            r#"{"error":"InvalidRequest","message":"bad"}"#,
        ))
        .unwrap_err();
        assert!(matches!(
            error,
            OAuthError::Xrpc(crate::error::XrpcError { status: 400, ref error, message: Some(ref m) }) if error == "InvalidRequest" && m == "bad"
        ));
        assert_eq!(xrpc_result(&response(200, "")).unwrap(), Value::Null);
    }
}
