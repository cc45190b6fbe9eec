//! The errors of the OAuth flow and of sessions. Variants follow the flow (STYLE §3); server
//! errors keep the OAuth `error` code as data, so callers can tell `invalid_grant` (sign in
//! again) from a transient failure. No variant ever carries a token, code or key.

use crate::crypto::{KeyError, RandomError};
use crate::http::HttpError;
use crate::identity::IdentityError;
use crate::metadata::MetadataError;
use crate::rules::Violations;
use crate::scope::{Permission, ScopeError};
use crate::store::StoreError;
use crate::syntax::{Did, SyntaxError};

/// Why the client's configuration, or a request against it, cannot be used. Each names the
/// rule it breaks, in brackets; [docs/rules.md](https://github.com/atoauth/atoauth/blob/main/docs/rules.md)
/// explains every id ([`rule_url`](crate::protocol::rules::rule_url) links one).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The builder was given neither `loopback(…)` nor `metadata(…)`.
    #[error("choose a client: loopback(…) or metadata(…)")]
    NoClient,
    /// The loopback development client got keys (C1: it is always public).
    #[error("[C1] the loopback development client is public; it takes no keys")]
    LoopbackTakesNoKeys,
    /// A public client (`token_endpoint_auth_method: none`) got keys.
    #[error("[J1] a public client (token_endpoint_auth_method none) takes no keys")]
    PublicClientTakesNoKeys,
    /// A confidential client (`private_key_jwt`) has no keyset.
    #[error("[J1] a confidential client (private_key_jwt) needs its keyset")]
    ConfidentialClientNeedsKeys,
    /// A key of the keyset is not in the metadata's `jwks`.
    #[error("[B5.10] the key {kid:?} is not in the metadata's jwks")]
    KeyNotPublished {
        /// The key id.
        kid: String,
    },
    /// Both a keyset and another assertion source were given.
    #[error("[U2] give a confidential client its keyset or a client-assertion source, not both")]
    TwoAssertionSources,
    /// The key a session is bound to is not in the keyset any more.
    #[error("[J6] the client key {kid:?} is not in the keyset")]
    KeyNotInKeyset {
        /// The key id.
        kid: String,
    },
    /// The requested scope lacks `atproto`.
    #[error("[G2] the requested scope {scope:?} must include \"atproto\"")]
    ScopeWithoutAtproto {
        /// The requested scope.
        scope: String,
    },
    /// The requested scope has tokens the client metadata does not declare.
    #[error("[G2] the client metadata does not declare {}", undeclared.join(" "))]
    ScopeNotDeclared {
        /// The undeclared tokens.
        undeclared: Vec<String>,
    },
    /// The redirect URI is not one the client declares.
    #[error("[D1] redirect URI {requested:?} is not declared (declared: {})", declared.join(", "))]
    RedirectUriNotDeclared {
        /// The redirect URI asked for.
        requested: String,
        /// The declared ones.
        declared: Vec<String>,
    },
    /// The client declares no redirect URI.
    #[error("[B5.6] the client declares no redirect URI")]
    NoRedirectUri,
    /// The default HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
    /// Built without the `reqwest` feature and given no HTTP client.
    #[error("without the reqwest feature, pass an HTTP client with http_client(…)")]
    NoHttpClient,
}

/// An XRPC error answer from a PDS (or a service it proxies to): the HTTP status and the
/// `error` / `message` of its JSON body. Permission refusals are [`OAuthError::ScopeMissing`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the PDS answered HTTP {status}: {error}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
pub struct XrpcError {
    /// HTTP status.
    pub status: u16,
    /// The XRPC `error` name (`InvalidRequest`, `RecordNotFound`, …).
    pub error: String,
    /// The XRPC `message`.
    pub message: Option<String>,
}

/// Which authorization-server endpoint answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// Pushed authorization request (G1).
    Par,
    /// Code exchange (L1).
    Token,
    /// Refresh (N2).
    Refresh,
    /// Revocation (P1).
    Revocation,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Par => "the PAR endpoint",
            Self::Token => "the token endpoint",
            Self::Refresh => "the token endpoint (refresh)",
            Self::Revocation => "the revocation endpoint",
        })
    }
}

/// Why a stored session can no longer be used (Q3, R2, J6).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEndCause {
    /// The user or the app signed out.
    SignedOut,
    /// The server refused the refresh token (`invalid_grant`): revoked, expired or replayed.
    RefreshRejected {
        /// The server's description.
        description: Option<String>,
    },
    /// The access token stays invalid after a refresh (O2).
    TokenRejected,
    /// The session has no refresh token and its access token expired.
    Expired,
    /// The account moved to a PDS served by another authorization server (R2).
    AuthorizationServerChanged {
        /// The session's issuer.
        was: String,
        /// The issuer the DID's PDS names now.
        now: String,
    },
    /// The confidential-client key the session is bound to is gone (J6).
    KeyRemoved {
        /// The key id.
        kid: String,
    },
    /// The stored session belongs to another client id (a configuration change).
    ClientChanged,
    /// The session's DPoP key is gone from the key store that kept it (a browser's site data
    /// was cleared): no proof can be made for its tokens.
    DpopKeyMissing,
    /// The client-assertion backend refuses this device (its DPoP key was denied, or it lacks
    /// the app's sign-in cookie), so the session cannot be refreshed (U8).
    AssertionRefused {
        /// The backend's reason.
        reason: String,
    },
}

impl std::fmt::Display for SessionEndCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SignedOut => f.write_str("signed out"),
            Self::RefreshRejected { description } => write!(
                f,
                "the server refused the refresh token ({})",
                description.as_deref().unwrap_or("invalid_grant")
            ),
            Self::TokenRejected => f.write_str("the server keeps refusing the access token"),
            Self::Expired => f.write_str("the access token expired and there is no refresh token"),
            Self::AuthorizationServerChanged { was, now } => write!(
                f,
                "the account moved: its authorization server is now {now}, not {was}; sign in again"
            ),
            Self::KeyRemoved { kid } => {
                write!(
                    f,
                    "the client key {kid:?} this session is bound to was removed"
                )
            }
            Self::ClientChanged => f.write_str("the session belongs to another client id"),
            Self::DpopKeyMissing => {
                f.write_str("the session's DPoP key is gone from the key store that kept it")
            }
            Self::AssertionRefused { reason } => write!(
                f,
                "[U8] the client-assertion backend refuses this device: {reason}"
            ),
        }
    }
}

/// Everything that can go wrong in the OAuth flow or a session.
///
/// Messages cite the rule that failed by its id in brackets (`[G2]`, `[L2.3]`); each is
/// explained in [docs/rules.md](https://github.com/atoauth/atoauth/blob/main/docs/rules.md),
/// under an anchor of the same name. [`OAuthError::requires_sign_in`] tells whether the user
/// must sign in again; [`XrpcError`] is the PDS's own answer to a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthError {
    /// The login input is neither a handle, a DID nor a server URL (E1).
    #[error("{input:?} is not a handle, a DID or a server URL: {reason}")]
    InvalidInput {
        /// What was given.
        input: String,
        /// Why it was refused.
        reason: String,
    },
    /// The client configuration, or a request against it, is unusable (B, C, D, G2, J).
    #[error("invalid client configuration: {0}")]
    Config(#[from] ConfigError),
    /// An identifier (DID, handle, NSID) is malformed.
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    /// A requested scope token the authorization server would drop or fail on (permission
    /// spec §9.45–47); nothing was sent.
    #[error("[G2] {0}; nothing was sent, since the authorization server would drop or fail on it")]
    InvalidScope(ScopeError),
    /// The client metadata breaks rules (B10).
    #[error("invalid client metadata: {0}")]
    ClientMetadata(#[from] Violations),
    /// Identity resolution failed (section E).
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// Discovery failed (section F).
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// A request could not be sent or its response read.
    #[error("request to {url} failed")]
    Http {
        /// The URL, without query.
        url: String,
        /// The transport error.
        #[source]
        source: HttpError,
    },
    /// The authorization server answered an OAuth error (kept as data).
    #[error("{endpoint} answered HTTP {status}: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Server {
        /// Which endpoint.
        endpoint: Endpoint,
        /// HTTP status.
        status: u16,
        /// The OAuth `error` code (`invalid_grant`, `invalid_request`, …).
        error: String,
        /// `error_description`.
        description: Option<String>,
    },
    /// A response broke a rule of the profile (L2, G4, I8).
    #[error("[{rule}] invalid response from {endpoint}: {reason}")]
    InvalidResponse {
        /// Which endpoint (or the PDS).
        endpoint: String,
        /// The rule id.
        rule: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The callback carried an error from the authorization server (K3), e.g. `access_denied`.
    #[error("the authorization server returned {error}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    AuthorizationFailed {
        /// The OAuth error code.
        error: String,
        /// `error_description`.
        description: Option<String>,
        /// `error_uri`.
        uri: Option<String>,
        /// The app state saved with the request.
        app_state: Option<String>,
    },
    /// The callback is malformed or does not match a pending request (K1, K2, K4).
    #[error("[{rule}] bad callback: {reason}")]
    Callback {
        /// The rule id.
        rule: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The token's `sub` is not the account the flow started for (L3) or the session's (N7).
    #[error("[L3] the server signed in {actual}, but the flow was for {expected}")]
    SubjectMismatch {
        /// The DID expected.
        expected: Did,
        /// The DID in the token response.
        actual: Did,
    },
    /// The issuer is not authoritative for the account (L4).
    #[error("[L4] {issuer} is not the authorization server of {did} (its PDS names {found})")]
    NotAuthoritative {
        /// The account.
        did: Did,
        /// The issuer that issued the tokens.
        issuer: String,
        /// The issuer the account's PDS names.
        found: String,
    },
    /// No stored session for this account.
    #[error("no session for {did}")]
    SessionNotFound {
        /// The account.
        did: Did,
    },
    /// The session ended and was deleted; sign in again.
    #[error("the session of {did} ended: {cause}")]
    SessionEnded {
        /// The account.
        did: Did,
        /// Why.
        cause: SessionEndCause,
    },
    /// The PDS refused a call for want of a permission (O3); request it in a new authorization.
    #[error("the session lacks the permission {permission} ({message})")]
    ScopeMissing {
        /// The permission the PDS named.
        permission: Box<Permission>,
        /// The PDS's message.
        message: String,
    },
    /// The PDS answered an XRPC error.
    #[error(transparent)]
    Xrpc(#[from] XrpcError),
    /// A store failed.
    #[error("session storage failed")]
    Store(#[from] StoreError),
    /// Key handling failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Randomness failed.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// No client assertion could be had from the client-assertion backend (section U); the
    /// session, if any, is kept.
    #[error(transparent)]
    ClientAssertion(#[from] crate::client_auth::remote::AssertionError),
    /// Fresh tokens could not be stored; they were revoked (P3). The session cannot go on: the
    /// server has spent the previous refresh token, so the user signs in again.
    #[error("new tokens could not be stored and were revoked")]
    PersistFailed(#[source] StoreError),
    /// The loopback redirect of a command-line app did not arrive.
    #[cfg(not(target_arch = "wasm32"))]
    #[error(transparent)]
    Loopback(#[from] crate::loopback::LoopbackError),
    /// A bug in atoauth: please report it.
    #[error("internal error (a bug in atoauth): {0}")]
    Internal(String),
}

impl OAuthError {
    /// Whether the user must sign in again: the session is gone or can no longer be used.
    /// Other errors (network, a busy server) may pass; retrying later is reasonable.
    #[must_use]
    pub fn requires_sign_in(&self) -> bool {
        matches!(
            self,
            Self::SessionEnded { .. }
                | Self::SessionNotFound { .. }
                | Self::SubjectMismatch { .. }
                | Self::PersistFailed(_)
        )
    }

    /// The XRPC error answer, when the PDS gave one.
    #[must_use]
    pub fn xrpc(&self) -> Option<&XrpcError> {
        match self {
            Self::Xrpc(error) => Some(error),
            _ => None,
        }
    }

    /// The OAuth `error` code when the server or the callback gave one.
    #[must_use]
    pub fn oauth_error_code(&self) -> Option<&str> {
        match self {
            Self::Server { error, .. } | Self::AuthorizationFailed { error, .. } => Some(error),
            _ => None,
        }
    }
}
