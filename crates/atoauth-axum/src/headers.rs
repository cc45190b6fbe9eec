//! Security headers. Every response of the web app refuses to be framed, sniffed or named in a
//! `Referer`; HTML pages (each carries a CSRF token) are never cached; and what the XRPC proxy
//! passes back from a PDS — bytes any account on that PDS may have uploaded — stays inert on our
//! origin: never rendered as a page, never run as a script.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The policy for proxied content: no subresource, no script, a unique origin, no framing.
const INERT_CSP: &str = "default-src 'none'; sandbox; frame-ancestors 'none'";

/// Adds the headers every page needs, unless a handler chose its own.
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let defaults = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"),
    ];
    for (name, value) in defaults {
        set_default(headers, name, value);
    }
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        set_default(headers, header::CACHE_CONTROL, "no-store");
    }
    response
}

/// On an https app: browsers keep to https for a year (this host only; sibling subdomains are
/// not ours to decide).
pub(crate) async fn strict_transport(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    set_default(
        response.headers_mut(),
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000",
    );
    response
}

fn set_default(headers: &mut HeaderMap, name: HeaderName, value: &'static str) {
    headers
        .entry(name)
        .or_insert(HeaderValue::from_static(value));
}

/// Makes a proxied PDS response harmless on our origin: never sniffed, sandboxed, and anything
/// that is not JSON downloaded rather than shown.
pub(crate) fn make_inert(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(INERT_CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let attachment = headers
        .get(header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("attachment")
        });
    if !json && !attachment {
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment"),
        );
    }
}

/// A top-level navigation (a followed link, a typed URL, a frame): never answered with what a
/// PDS stores. Scripts and API clients send no `Sec-Fetch-*` or other values, and keep working.
pub(crate) fn is_navigation(headers: &HeaderMap) -> bool {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    value("sec-fetch-mode") == Some("navigate") || value("sec-fetch-dest") == Some("document")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxied_content_is_inert_and_only_json_is_shown() {
        let mut html = HeaderMap::new();
        html.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        html.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("inline"),
        );
        make_inert(&mut html);
        assert_eq!(html[header::CONTENT_DISPOSITION], "attachment");
        assert_eq!(html[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(html[header::CONTENT_SECURITY_POLICY], INERT_CSP);

        let mut json = HeaderMap::new();
        json.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        make_inert(&mut json);
        assert!(json.get(header::CONTENT_DISPOSITION).is_none());
        assert_eq!(json[header::CONTENT_SECURITY_POLICY], INERT_CSP);

        let mut named = HeaderMap::new();
        named.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"x.bin\""),
        );
        make_inert(&mut named);
        assert_eq!(
            named[header::CONTENT_DISPOSITION],
            "attachment; filename=\"x.bin\""
        );
    }

    #[test]
    fn navigations_are_told_apart_from_scripts() {
        let mut headers = HeaderMap::new();
        assert!(
            !is_navigation(&headers),
            "API clients send no Sec-Fetch headers"
        );
        headers.insert("sec-fetch-mode", HeaderValue::from_static("cors"));
        headers.insert("sec-fetch-dest", HeaderValue::from_static("empty"));
        assert!(!is_navigation(&headers), "fetch() from our own page");
        headers.insert("sec-fetch-mode", HeaderValue::from_static("navigate"));
        assert!(is_navigation(&headers));
        headers.remove("sec-fetch-mode");
        headers.insert("sec-fetch-dest", HeaderValue::from_static("document"));
        assert!(is_navigation(&headers));
    }
}
