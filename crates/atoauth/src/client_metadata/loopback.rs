//! The `http://localhost` development client (section C): its `client_id` is built from the
//! redirect URIs and scope, and the authorization server synthesises its metadata.

use url::Url;

use crate::rules::{Checker, Violations};

/// The redirect URIs the AS assumes when a loopback `client_id` declares none (C2).
pub const DEFAULT_LOOPBACK_REDIRECTS: [&str; 2] = ["http://127.0.0.1/", "http://[::1]/"];

/// A loopback development client: what its `client_id` declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopbackClient {
    /// Declared redirect URIs; empty means the defaults (C2).
    pub redirect_uris: Vec<String>,
    /// Declared scope; `None` means `atproto` (C2).
    pub scope: Option<String>,
}

/// The redirect URI of [`LoopbackClient::with_scope`]: `/callback` on 127.0.0.1, any port (C4).
pub const LOOPBACK_REDIRECT_URI: &str = "http://127.0.0.1/callback";

impl LoopbackClient {
    /// The development client asking for `scope`, with the one redirect URI
    /// [`LOOPBACK_REDIRECT_URI`], which `atoauth::loopback::CallbackServer` and the web
    /// layer's development mode both answer (on whatever port they run).
    ///
    /// # Errors
    /// A scope without `atproto` (C2).
    pub fn with_scope(scope: &str) -> Result<Self, Violations> {
        Self::new([LOOPBACK_REDIRECT_URI], Some(scope))
    }

    /// A client declaring `redirect_uris` and `scope`, both checked (C2, C3).
    ///
    /// # Errors
    /// Every violated rule.
    pub fn new(
        redirect_uris: impl IntoIterator<Item = impl Into<String>>,
        scope: Option<&str>,
    ) -> Result<Self, Violations> {
        let client = Self {
            redirect_uris: redirect_uris.into_iter().map(Into::into).collect(),
            scope: scope.map(str::to_owned),
        };
        let mut check = Checker::default();
        client.check(&mut check);
        if check.0.is_empty() {
            Ok(client)
        } else {
            Err(Violations(check.0))
        }
    }

    fn check(&self, check: &mut Checker) {
        for uri in &self.redirect_uris {
            if let Some(problem) = loopback_redirect_problem(uri) {
                check.fail("C3", problem);
            }
        }
        if let Some(scope) = &self.scope {
            check.require(
                scope.split(' ').any(|s| s == "atproto"),
                "C2",
                format!("the loopback client's scope {scope:?} must include \"atproto\""),
            );
        }
    }

    /// The `client_id`, omitting parameters equal to the defaults (C7).
    #[must_use]
    pub fn client_id(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        let defaults = self.redirect_uris.is_empty()
            || self
                .redirect_uris
                .iter()
                .map(String::as_str)
                .eq(DEFAULT_LOOPBACK_REDIRECTS);
        if !defaults {
            for uri in &self.redirect_uris {
                query.append_pair("redirect_uri", uri);
            }
        }
        if let Some(scope) = self.scope.as_deref().filter(|s| *s != "atproto") {
            query.append_pair("scope", scope);
        }
        // form_urlencoded writes spaces as `+`; C7's example (and the reference AS) use `%20`.
        let query = query.finish().replace('+', "%20");
        if query.is_empty() {
            "http://localhost".to_owned()
        } else {
            format!("http://localhost?{query}")
        }
    }

    /// The scope the client may request.
    #[must_use]
    pub fn scope(&self) -> &str {
        self.scope.as_deref().unwrap_or("atproto")
    }

    /// The redirect URIs in force (declared, or the defaults).
    #[must_use]
    pub fn effective_redirect_uris(&self) -> Vec<String> {
        if self.redirect_uris.is_empty() {
            DEFAULT_LOOPBACK_REDIRECTS.map(str::to_owned).to_vec()
        } else {
            self.redirect_uris.clone()
        }
    }

    /// C4: whether `uri` matches a declared redirect URI, ignoring the port.
    #[must_use]
    pub fn accepts_redirect(&self, uri: &str) -> bool {
        self.effective_redirect_uris()
            .iter()
            .any(|declared| redirect_matches(declared, uri))
    }

    /// Reads a loopback `client_id` (C1–C3).
    ///
    /// # Errors
    /// Every violated rule.
    pub fn parse(client_id: &str) -> Result<Self, Violations> {
        let mut check = Checker::default();
        let Ok(url) = Url::parse(client_id) else {
            check.fail("C1", format!("{client_id:?} is not a URL"));
            return Err(Violations(check.0));
        };
        check.require(
            url.scheme() == "http" && url.host_str() == Some("localhost"),
            "C1",
            "a loopback client_id must start with http://localhost (not 127.0.0.1)",
        );
        check.require(
            url.port().is_none(),
            "C1",
            "a loopback client_id must not have a port",
        );
        check.require(
            url.path() == "/" || url.path().is_empty(),
            "C1",
            "a loopback client_id has no path",
        );
        check.require(
            url.fragment().is_none() && url.username().is_empty(),
            "C1",
            "a loopback client_id has no fragment or user info",
        );
        let mut redirect_uris = Vec::new();
        let mut scope = None;
        for (name, value) in url.query_pairs() {
            match name.as_ref() {
                "redirect_uri" => redirect_uris.push(value.into_owned()),
                "scope" if scope.is_none() => scope = Some(value.into_owned()),
                "scope" => check.fail("C2", "\"scope\" appears more than once"),
                other => check.fail("C2", format!("unknown parameter {other:?}")),
            }
        }
        let client = Self {
            redirect_uris,
            scope,
        };
        client.check(&mut check);
        if check.0.is_empty() {
            Ok(client)
        } else {
            Err(Violations(check.0))
        }
    }
}

/// Whether the redirect URI `actual` matches the declared one: exactly, or — for a loopback
/// redirect declared without a port — on any port (C4, RFC 8252 §7.3).
#[must_use]
pub fn redirect_matches(declared: &str, actual: &str) -> bool {
    if declared == actual {
        return true;
    }
    let (Ok(declared), Ok(actual)) = (Url::parse(declared), Url::parse(actual)) else {
        return false;
    };
    let loopback =
        declared.scheme() == "http" && matches!(declared.host_str(), Some("127.0.0.1" | "[::1]"));
    loopback
        && declared.port().is_none()
        && declared.scheme() == actual.scheme()
        && declared.host() == actual.host()
        && declared.path() == actual.path()
        && declared.query() == actual.query()
}

/// Whether `client_id` is a loopback (development) client id.
#[must_use]
pub fn is_loopback_client_id(client_id: &str) -> bool {
    client_id == "http://localhost"
        || client_id.starts_with("http://localhost/")
        || client_id.starts_with("http://localhost?")
        || client_id.starts_with("http://localhost:")
}

/// C3/D5: a loopback redirect is `http` to `127.0.0.1` or `[::1]`, never `localhost`.
pub(crate) fn loopback_redirect_problem(uri: &str) -> Option<String> {
    let Ok(url) = Url::parse(uri) else {
        return Some(format!("redirect URI {uri:?} is not a URL"));
    };
    if url.scheme() != "http" {
        return Some(format!("loopback redirect URI {uri} must use http"));
    }
    match url.host_str() {
        Some("127.0.0.1" | "[::1]") => None,
        Some("localhost") => Some(format!(
            "redirect URI {uri} uses localhost; use 127.0.0.1 or [::1] (RFC 8252 §8.3)"
        )),
        _ => Some(format!(
            "loopback redirect URI {uri} must use the host 127.0.0.1 or [::1]"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c7_defaults_give_a_bare_client_id() {
        let client = LoopbackClient::new(Vec::<String>::new(), None).unwrap();
        assert_eq!(client.client_id(), "http://localhost");
        let client = LoopbackClient::new(DEFAULT_LOOPBACK_REDIRECTS, Some("atproto")).unwrap();
        assert_eq!(client.client_id(), "http://localhost");
    }

    #[test]
    fn c7_spec_example_round_trips() {
        let client = LoopbackClient::new(
            ["http://127.0.0.1:8080/callback"],
            Some("atproto transition:generic"),
        )
        .unwrap();
        let id = client.client_id();
        assert_eq!(
            id,
            "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcallback&scope=atproto%20transition%3Ageneric"
        );
        assert_eq!(LoopbackClient::parse(&id).unwrap(), client);
    }

    #[test]
    fn c1_c2_c3_refusals() {
        for (id, rule) in [
            ("http://127.0.0.1", "C1"),
            ("http://localhost:3000", "C1"),
            ("http://localhost/path", "C1"),
            ("http://localhost?foo=bar", "C2"),
            ("http://localhost?scope=atproto&scope=atproto", "C2"),
            ("http://localhost?scope=transition%3Ageneric", "C2"),
            (
                "http://localhost?redirect_uri=http%3A%2F%2Flocalhost%2Fcb",
                "C3",
            ),
            (
                "http://localhost?redirect_uri=https%3A%2F%2F127.0.0.1%2Fcb",
                "C3",
            ),
        ] {
            let violations = LoopbackClient::parse(id).unwrap_err();
            assert!(
                violations.iter().any(|v| v.rule == rule),
                "{id}: {violations:?}"
            );
        }
    }

    #[test]
    fn c4_port_is_ignored_when_matching() {
        let client = LoopbackClient::new(["http://127.0.0.1/callback"], None).unwrap();
        assert!(client.accepts_redirect("http://127.0.0.1:51234/callback"));
        assert!(!client.accepts_redirect("http://127.0.0.1:51234/other"));
        assert!(!client.accepts_redirect("http://[::1]:51234/callback"));
        let defaults = LoopbackClient::new(Vec::<String>::new(), None).unwrap();
        assert!(defaults.accepts_redirect("http://[::1]:9/"));
    }
}
