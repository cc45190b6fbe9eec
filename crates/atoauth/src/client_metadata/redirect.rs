//! Redirect URI rules for client metadata documents (section D).

use url::Url;

use super::loopback::loopback_redirect_problem;
use super::validate::{ValidationOptions, local_host_problem};
use crate::rules::Checker;

pub(super) fn check_redirect(
    check: &mut Checker,
    uri: &str,
    native: bool,
    client_host: Option<&str>,
    options: &ValidationOptions,
) {
    let Ok(url) = Url::parse(uri) else {
        check.fail("D1", format!("redirect URI {uri:?} is not an absolute URL"));
        return;
    };
    check.require(
        url.username().is_empty() && url.password().is_none(),
        "D5",
        format!("redirect URI {uri} must not contain user info"),
    );
    match url.scheme() {
        "https" => {
            // D2: a port only when it is not the default one (`Url` drops :443 itself).
            check.require(
                !uri.contains(":443/") && !uri.ends_with(":443"),
                "D2",
                format!("redirect URI {uri} must not spell out the default port"),
            );
            if let Some(host) = url.host_str()
                && let Some(problem) = local_host_problem(host, options)
            {
                check.fail("D5", format!("redirect URI {uri}: {problem}"));
            }
        }
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
        scheme => {
            // D3: private-use scheme = reversed client_id host, then exactly ":/" and a path.
            if !native {
                check.fail(
                    "D3",
                    format!("custom-scheme redirect URI {uri} is allowed for native clients only"),
                );
                return;
            }
            let reversed =
                client_host.map(|host| host.split('.').rev().collect::<Vec<_>>().join("."));
            check.require(
                scheme.contains('.'),
                "D3",
                format!("custom scheme {scheme:?} must be a reversed domain name"),
            );
            if let Some(reversed) = reversed {
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
                format!(
                    "custom-scheme redirect URI {uri} must be {scheme}:/<path> (exactly one slash)"
                ),
            );
        }
    }
}
