//! Redirect URI rules for client metadata documents (section D, B6.2, B6.3).

use url::Url;

use super::loopback::loopback_redirect_problem;
use super::validate::{https_host_problem, local_host_problem};
use crate::rules::Checker;

pub(super) fn check_redirect(
    check: &mut Checker,
    uri: &str,
    native: bool,
    client_host: Option<&str>,
) {
    // B6.2: compared as written: the scheme decides the rules before any URL parser runs.
    if uri.trim() != uri {
        check.fail(
            "B6.2",
            format!("redirect URI {uri:?} has surrounding white space"),
        );
        return;
    }
    let Ok(url) = Url::parse(uri) else {
        check.fail("D1", format!("redirect URI {uri:?} is not an absolute URL"));
        return;
    };
    let written_scheme = &uri[..url.scheme().len()];
    if written_scheme != url.scheme() {
        // B6.2: the server tells https and http apart by the scheme as written, so `HTTPS:` is
        // no https URL to it; a private-use scheme it compares in lower case.
        if matches!(url.scheme(), "https" | "http") {
            check.fail(
                "B6.2",
                format!(
                    "redirect URI {uri}: write the scheme in lower case ({})",
                    url.scheme()
                ),
            );
            return;
        }
        check.warn(
            "B6.3",
            format!(
                "redirect URI {uri}: write the scheme in lower case ({})",
                url.scheme()
            ),
        );
    }
    check.require(
        url.username().is_empty() && url.password().is_none(),
        "D5",
        format!("redirect URI {uri} must not contain user info"),
    );
    if url.fragment().is_some() {
        check.warn(
            "B6.3",
            format!("redirect URI {uri} has a fragment, which the response cannot use"),
        );
    }
    match url.scheme() {
        "https" => check_https(check, uri, &url),
        "http" => {
            if let Some(problem) = loopback_redirect_problem(uri) {
                check.fail("D5", format!("{problem} (plain http is for loopback only)"));
            } else if !native {
                check.fail(
                    "D5",
                    format!("loopback redirect URI {uri} is allowed for native clients only"),
                );
            }
        }
        scheme => check_private_use(check, uri, scheme, native, client_host),
    }
}

fn check_https(check: &mut Checker, uri: &str, url: &Url) {
    if let Some(problem) = https_host_problem(url) {
        check.fail("B6.2", format!("redirect URI {uri}: {problem}"));
        return;
    }
    if let Some(host) = url.host_str() {
        if let Some(problem) = local_host_problem(host) {
            check.fail("D5", format!("redirect URI {uri}: {problem}"));
        }
        let written_host = uri["https://".len()..]
            .split(['/', '?', '#'])
            .next()
            .unwrap_or("")
            .rsplit('@')
            .next()
            .unwrap_or("");
        if written_host.bytes().any(|b| !b.is_ascii()) {
            check.warn(
                "B6.3",
                format!("redirect URI {uri}: write the host name in punycode ({host})"),
            );
        } else if written_host.bytes().any(|b| b.is_ascii_uppercase()) {
            // The official server accepts it, and compares it as written at PAR.
            check.warn(
                "B6.3",
                format!("redirect URI {uri}: write the host in lower case ({host})"),
            );
        }
        if written_host.ends_with(":443") {
            check.warn(
                "D2",
                format!("redirect URI {uri} spells out the default port 443"),
            );
        }
    }
}

/// D3: private-use scheme = reversed client_id host, then exactly ":/" and a path.
fn check_private_use(
    check: &mut Checker,
    uri: &str,
    scheme: &str,
    native: bool,
    client_host: Option<&str>,
) {
    if !native {
        check.fail(
            "D3",
            format!("custom-scheme redirect URI {uri} is allowed for native clients only"),
        );
        return;
    }
    let labels: Vec<&str> = scheme.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        check.fail(
            "D3",
            format!("custom scheme {scheme:?} must be a reversed domain name"),
        );
        return;
    }
    let domain = labels.iter().rev().copied().collect::<Vec<_>>().join(".");
    if let Some(problem) = local_host_problem(&domain) {
        check.fail("D3", format!("custom scheme {scheme:?}: {problem}"));
    }
    if let Some(host) = client_host {
        let reversed = host.split('.').rev().collect::<Vec<_>>().join(".");
        check.require(
            scheme == reversed,
            "D3",
            format!("custom scheme {scheme:?} must be the client_id host reversed ({reversed:?})"),
        );
    }
    let rest = &uri[scheme.len()..];
    check.require(
        rest.starts_with(":/") && !rest.starts_with("://"),
        "D3",
        format!("custom-scheme redirect URI {uri} must be {scheme}:/<path> (exactly one slash)"),
    );
}
