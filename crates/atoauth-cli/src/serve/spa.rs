//! `atoauth serve --spa <dir>`: a single-page app's static files at `/`, instead of the
//! server-rendered pages, for a browser app that is its own OAuth client (`atoauth-browser`).
//!
//! Files are served with their MIME type (`application/wasm` included, which streaming
//! compilation requires) and the same hardening as every page we serve: a CSP that allows
//! WebAssembly (`'wasm-unsafe-eval'`) and `fetch` to any https server (the user's PDS can be
//! anywhere), framing refused, `nosniff`, no referrer. Paths cannot leave the directory.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

struct Site {
    root: PathBuf,
    csp: HeaderValue,
}

/// The router for `dir` (checked to exist). `loopback_http` lets pages reach servers on this
/// machine over http (the `--insecure-dev` harness).
pub(crate) fn router(dir: &Path, loopback_http: bool) -> anyhow::Result<Router> {
    let root = dir
        .canonicalize()
        .map_err(|e| anyhow::anyhow!("--spa {}: {e}", dir.display()))?;
    if !root.join("index.html").is_file() {
        anyhow::bail!("--spa {}: no index.html there", dir.display());
    }
    let connect = if loopback_http {
        "'self' https: http://127.0.0.1:* http://localhost:*"
    } else {
        "'self' https:"
    };
    let csp = format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src {connect}; \
         img-src 'self' data: https:; style-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    );
    let site = Arc::new(Site {
        root,
        csp: HeaderValue::from_str(&csp)?,
    });
    Ok(Router::new().fallback(file).with_state(site))
}

fn mime(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The file a request path names, if it stays inside the root: no `..`, no hidden files, no
/// escapes (percent-encoded names are refused rather than decoded).
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() || relative.ends_with('/') {
        format!("{relative}index.html")
    } else {
        relative.to_owned()
    };
    if relative.contains('%') || relative.contains('\\') {
        return None;
    }
    let relative = Path::new(&relative);
    let plain = relative.components().all(|c| match c {
        Component::Normal(name) => !name.to_string_lossy().starts_with('.'),
        _ => false,
    });
    if !plain {
        return None;
    }
    // Symbolic links must not lead out either.
    let full = root.join(relative).canonicalize().ok()?;
    (full.starts_with(root) && full.is_file()).then_some(full)
}

async fn file(State(site): State<Arc<Site>>, uri: Uri) -> Response {
    let Some(path) = resolve(&site.root, uri.path()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(bytes) = tokio::fs::read(&path).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime(&path)));
    headers.insert(header::CONTENT_SECURITY_POLICY, site.csp.clone());
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Always revalidated: a new build must reach the page.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn paths_stay_inside_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("index.html"), "<!doctype html>").unwrap();
        std::fs::create_dir(root.join("pkg")).unwrap();
        std::fs::write(root.join("pkg/app.wasm"), b"\0asm").unwrap();
        std::fs::write(root.join(".secret"), "no").unwrap();
        assert_eq!(resolve(&root, "/"), Some(root.join("index.html")));
        assert_eq!(
            resolve(&root, "/pkg/app.wasm"),
            Some(root.join("pkg/app.wasm"))
        );
        for refused in [
            "/../etc/passwd",
            "/.secret",
            "/pkg/../.secret",
            "/%2e%2e/x",
            "/missing",
        ] {
            assert_eq!(resolve(&root, refused), None, "{refused}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc", root.join("out")).unwrap();
            assert_eq!(resolve(&root, "/out/hostname"), None);
        }
        assert_eq!(mime(Path::new("a.wasm")), "application/wasm");
    }
}
