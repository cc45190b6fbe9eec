//! Checks shared by issuer and resource URLs: a bare origin (F3, F4.1).

use url::Url;

use crate::http::TargetPolicy;

/// Why `value` is not a bare https origin, or `None` when it is one. Under
/// [`TargetPolicy::InsecureAllowLoopbackHttp`], `http` is accepted for `localhost`, `127.0.0.1`
/// and `[::1]` (F7, S2).
pub(crate) fn bare_origin_problem(value: &str, policy: TargetPolicy) -> Option<String> {
    let Ok(url) = Url::parse(value) else {
        return Some(format!("{value:?} is not an absolute URL"));
    };
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if policy.is_insecure() && loopback => {}
        "http" if loopback => {
            return Some(format!(
                "{value} uses http; only allowed with the insecure loopback development policy"
            ));
        }
        scheme => return Some(format!("{value} must use https, not {scheme}")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Some(format!("{value} must not contain user info"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Some(format!("{value} must not have a query or fragment"));
    }
    if url.path() != "/" || value.ends_with('/') {
        return Some(format!("{value} must be an origin without a path"));
    }
    // `Url` drops a default port; the text must not contain it either (F3).
    if url.port().is_none() && value.trim_end_matches('/').rsplit(':').next() == Some("443") {
        return Some(format!("{value} must not spell out the default port"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f3_bare_https_origin() {
        let strict = TargetPolicy::PublicHttpsOnly;
        assert_eq!(bare_origin_problem("https://bsky.social", strict), None);
        assert_eq!(
            bare_origin_problem("https://pds.example:8443", strict),
            None
        );
        for bad in [
            "https://bsky.social/",
            "https://bsky.social:443",
            "https://bsky.social/oauth",
            "https://user@bsky.social",
            "https://bsky.social?x=1",
            "https://bsky.social#f",
            "http://bsky.social",
            "http://localhost:2583",
            "bsky.social",
        ] {
            assert!(bare_origin_problem(bad, strict).is_some(), "{bad}");
        }
    }

    #[test]
    fn f7_http_only_for_loopback_under_the_insecure_policy() {
        let dev = TargetPolicy::InsecureAllowLoopbackHttp;
        assert_eq!(bare_origin_problem("http://localhost:2583", dev), None);
        assert_eq!(bare_origin_problem("http://127.0.0.1:2583", dev), None);
        assert!(bare_origin_problem("http://pds.example", dev).is_some());
    }
}
