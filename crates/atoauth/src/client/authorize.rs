//! `start_authorization`: resolve, discover, push the authorization request (PAR) with PKCE and
//! DPoP, save the pending state, and return the URL to send the browser to (sections E–H).

use std::collections::BTreeSet;

use serde_json::Value;
use url::Url;

use super::{ClientKind, OAuthClient};
use crate::crypto::random_token;
use crate::engine::transport::display;
use crate::error::ConfigError;
use crate::error::{Endpoint, OAuthError};
use crate::metadata::Discovered;
use crate::pkce::Pkce;
use crate::scope::Permission;
use crate::secret::State;
use crate::store::PendingAuthorization;
use crate::syntax::{AtIdentifier, Did};

/// The `prompt` values the reference AS understands (G2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Prompt {
    /// Fail unless the user is signed in and has consented.
    None,
    /// Ask the user to sign in again.
    Login,
    /// Ask for consent again.
    Consent,
    /// Let the user pick an account.
    SelectAccount,
    /// Offer to create an account.
    Create,
}

impl Prompt {
    fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Login => "login",
            Self::Consent => "consent",
            Self::SelectAccount => "select_account",
            Self::Create => "create",
        }
    }
}

/// Options of one authorization; every one is sent or used (none is silently ignored).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct AuthorizeOptions {
    /// The scope to request; default: every scope the client declares. Must include `atproto`
    /// and be a subset of the declared scope (G2, G8).
    pub scope: Option<String>,
    /// The redirect URI; default: the first declared one. Must be declared (D1).
    pub redirect_uri: Option<String>,
    /// Overrides the `login_hint` (default: the identifier as typed, E7; none for a server URL).
    pub login_hint: Option<String>,
    /// `prompt`.
    pub prompt: Option<Prompt>,
    /// `ui_locales`, e.g. `"fr-CA fr en"`.
    pub ui_locales: Option<String>,
    /// `display` (`page`, `popup`, `touch`).
    pub display: Option<String>,
    /// The app's own data, returned by `complete_authorization`; never sent to the server.
    pub app_state: Option<String>,
}

impl AuthorizeOptions {
    /// Sets the scope.
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Sets the redirect URI.
    #[must_use]
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }

    /// Sets the login hint.
    #[must_use]
    pub fn login_hint(mut self, hint: impl Into<String>) -> Self {
        self.login_hint = Some(hint.into());
        self
    }

    /// Sets the prompt.
    #[must_use]
    pub fn prompt(mut self, prompt: Prompt) -> Self {
        self.prompt = Some(prompt);
        self
    }

    /// Sets the UI locales.
    #[must_use]
    pub fn ui_locales(mut self, locales: impl Into<String>) -> Self {
        self.ui_locales = Some(locales.into());
        self
    }

    /// Sets the display mode.
    #[must_use]
    pub fn display(mut self, display: impl Into<String>) -> Self {
        self.display = Some(display.into());
        self
    }

    /// Sets the app state.
    #[must_use]
    pub fn app_state(mut self, state: impl Into<String>) -> Self {
        self.app_state = Some(state.into());
        self
    }
}

/// Where a login input leads.
struct Target {
    discovered: Discovered,
    expected_did: Option<Did>,
    login_hint: Option<String>,
}

impl OAuthClient {
    /// Starts signing a user in from a handle, a DID or a PDS/entryway URL (E1, F6), and returns
    /// the authorization URL to send the browser to (G5).
    ///
    /// # Errors
    /// Bad input, resolution or discovery failures, an invalid scope or redirect URI, a PAR
    /// error from the server, or a store failure.
    pub async fn start_authorization(
        &self,
        input: &str,
        options: AuthorizeOptions,
    ) -> Result<Url, OAuthError> {
        let inner = &self.inner;
        let scope = self.checked_scope(options.scope.as_deref())?;
        let expanded_scope = self.expanded(&scope).await?;
        let redirect_uri = self.checked_redirect_uri(options.redirect_uri.as_deref())?;
        let target = self.target(input.trim()).await?;
        let server = &target.discovered.server;
        let login_hint = options.login_hint.or(target.login_hint);

        let dpop = inner.new_dpop_key().await?;
        let pkce = Pkce::generate(inner.config().random.as_ref())?;
        let state = State::new(random_token(inner.config().random.as_ref(), 24)?);
        let mut binding = inner.new_binding();

        let mut params: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", Pkce::METHOD),
            ("state", state.secret()),
            ("redirect_uri", &redirect_uri),
            ("scope", &scope),
        ];
        let optional = [
            ("login_hint", login_hint.as_deref()),
            ("prompt", options.prompt.map(Prompt::as_str)),
            ("ui_locales", options.ui_locales.as_deref()),
            ("display", options.display.as_deref()),
        ];
        params.extend(optional.iter().filter_map(|(k, v)| v.map(|v| (*k, v))));

        let response = inner
            .post_to_server_binding(
                server,
                &server.pushed_authorization_request_endpoint,
                &params,
                &mut binding,
                (&dpop, inner.authorization_nonces()),
                None,
            )
            .await?;
        let request_uri = par_request_uri(server, &response)?;

        let now = inner.clock().local();
        let ttl = inner.config().state_ttl;
        let pending = PendingAuthorization {
            issuer: server.issuer.clone(),
            client_id: inner.config().client_id.clone(),
            dpop_key: dpop.record_jwk(),
            dpop_nonce: inner
                .authorization_nonces()
                .get(&crate::http::origin_of(&server.token_endpoint)),
            code_verifier: pkce.verifier,
            redirect_uri,
            auth: binding,
            scope,
            expanded_scope,
            expected_did: target.expected_did,
            app_state: options.app_state,
            created_at: now,
            expires_at: now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
        };
        inner.config().states.create(&state, &pending, ttl).await?;

        // G5: only client_id and request_uri.
        let mut url = server.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("client_id", &inner.config().client_id)
            .append_pair("request_uri", &request_uri);
        Ok(url)
    }

    async fn target(&self, input: &str) -> Result<Target, OAuthError> {
        let inner = &self.inner;
        let lowered = input.to_ascii_lowercase();
        if lowered.starts_with("https://") || lowered.starts_with("http://") {
            let url = Url::parse(input).map_err(|e| OAuthError::InvalidInput {
                input: input.to_owned(),
                reason: e.to_string(),
            })?;
            // F6: no account known yet; L4 proves the server is authoritative after the fact.
            let discovered = inner.config().discovery.for_server_url(&url).await?;
            return Ok(Target {
                discovered,
                expected_did: None,
                login_hint: None,
            });
        }
        let identifier =
            AtIdentifier::from_login_input(input).map_err(|e| OAuthError::InvalidInput {
                input: input.to_owned(),
                reason: e.to_string(),
            })?;
        let identity = inner.config().resolver.resolve(&identifier).await?;
        let discovered = inner
            .config()
            .discovery
            .for_pds(&identity.pds, false)
            .await?;
        Ok(Target {
            discovered,
            // E7: the identifier as the user typed it (normalised: no `@`, lower-case handle).
            login_hint: Some(identifier.to_string()),
            expected_did: Some(identity.did),
        })
    }

    /// The scope with its `include:` tokens expanded (§5), when the client resolves permission
    /// sets and there are any; a set that cannot be resolved stops the sign-in before PAR.
    async fn expanded(&self, scope: &str) -> Result<Option<String>, OAuthError> {
        let parsed = crate::scope::Scope::parse(scope);
        match &self.inner.config().permission_sets {
            Some(sets) if parsed.has_includes() => parsed
                .expand_includes(sets)
                .await
                .map(|expanded| Some(expanded.to_string()))
                .map_err(OAuthError::InvalidScope),
            _ => Ok(None),
        }
    }

    /// G2: the requested scope includes `atproto` and is a subset of the declared scope.
    fn checked_scope(&self, requested: Option<&str>) -> Result<String, OAuthError> {
        let declared = self.inner.declared_scope();
        let scope = requested.unwrap_or(declared);
        let tokens: Vec<&str> = scope.split_whitespace().collect();
        // §9.45–47: never send a token the PDS would silently drop or answer with HTTP 500.
        if let Some(error) = tokens.iter().find_map(|t| Permission::parse(t).err()) {
            return Err(OAuthError::InvalidScope(error));
        }
        if !tokens.contains(&"atproto") {
            return Err(ConfigError::ScopeWithoutAtproto {
                scope: scope.to_owned(),
            }
            .into());
        }
        let declared: BTreeSet<&str> = declared.split_whitespace().collect();
        let undeclared: Vec<&str> = tokens
            .iter()
            .copied()
            .filter(|t| !declared.contains(t))
            .collect();
        if !undeclared.is_empty() {
            return Err(ConfigError::ScopeNotDeclared {
                undeclared: undeclared.into_iter().map(str::to_owned).collect(),
            }
            .into());
        }
        Ok(tokens.join(" "))
    }

    /// D1: the redirect URI is declared (port-insensitive for loopback clients, C4).
    fn checked_redirect_uri(&self, requested: Option<&str>) -> Result<String, OAuthError> {
        let (declared, accepted) = match &self.inner.config().kind {
            ClientKind::Loopback(loopback) => {
                let declared = loopback.effective_redirect_uris();
                let accepted = requested.is_none_or(|uri| loopback.accepts_redirect(uri));
                (declared, accepted)
            }
            ClientKind::Published(metadata) => {
                let declared = metadata.redirect_uris.clone();
                let accepted = requested.is_none_or(|uri| {
                    declared
                        .iter()
                        .any(|d| crate::client_metadata::redirect_matches(d, uri))
                });
                (declared, accepted)
            }
        };
        if !accepted {
            return Err(ConfigError::RedirectUriNotDeclared {
                requested: requested.unwrap_or_default().to_owned(),
                declared,
            }
            .into());
        }
        match requested {
            Some(uri) => Ok(uri.to_owned()),
            None => declared
                .into_iter()
                .next()
                .ok_or_else(|| ConfigError::NoRedirectUri.into()),
        }
    }
}

/// G4: a JSON object with a `request_uri` (HTTP 201, or 200 from lenient servers).
fn par_request_uri(
    server: &crate::metadata::AuthorizationServerMetadata,
    response: &crate::http::Response,
) -> Result<String, OAuthError> {
    if !response.status().is_success() {
        return Err(crate::engine::token::server_error(Endpoint::Par, response));
    }
    let body: Value = serde_json::from_slice(response.body()).unwrap_or_default();
    body.get("request_uri")
        .and_then(Value::as_str)
        .filter(|uri| !uri.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| OAuthError::InvalidResponse {
            endpoint: display(&server.pushed_authorization_request_endpoint),
            rule: "G4",
            reason: "no request_uri in the PAR response".to_owned(),
        })
}
