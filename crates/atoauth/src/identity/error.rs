use std::sync::Arc;

use crate::http::HttpError;
use crate::syntax::SyntaxError;

/// Why an identity could not be resolved or verified (identity spec I.37).
///
/// `Clone`, so that one failed lookup can be handed to every caller it was coalesced with.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The input is not a valid handle or DID.
    #[error(transparent)]
    InvalidSyntax(#[from] SyntaxError),
    /// The handle uses a TLD that must never resolve (`.local`, `.invalid`, …).
    #[error("{handle} cannot be resolved: its top-level domain is reserved")]
    ReservedHandle {
        /// The handle.
        handle: String,
    },
    /// A DID method other than `plc` and `web`, or a `did:web` form atproto does not allow.
    #[error("unsupported DID {did}: {reason}")]
    UnsupportedDidMethod {
        /// The DID.
        did: String,
        /// What is not supported.
        reason: &'static str,
    },
    /// No method found a DID for the handle.
    #[error("handle {handle} not found: {detail}")]
    HandleNotFound {
        /// The handle.
        handle: String,
        /// What each method answered.
        detail: String,
    },
    /// DNS returned several different DIDs for the handle (D.16).
    #[error("handle {handle} is ambiguous: DNS lists several DIDs ({dids})")]
    HandleAmbiguous {
        /// The handle.
        handle: String,
        /// The DIDs found, comma-separated.
        dids: String,
    },
    /// The DID is unknown to its directory (PLC 404, or no did:web document).
    #[error("DID {did} not found")]
    DidNotFound {
        /// The DID.
        did: String,
    },
    /// The DID was deactivated or tombstoned (PLC 410).
    #[error("DID {did} is deactivated (tombstoned)")]
    DidTombstoned {
        /// The DID.
        did: String,
    },
    /// The fetched document or answer is not what the protocol requires.
    #[error("invalid DID document for {did}: {reason}")]
    InvalidDocument {
        /// The DID (or handle) whose document was fetched.
        did: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The document's `id` is not the DID that was resolved (E.24).
    #[error("the document fetched for {did} is for {found}")]
    DidDocIdMismatch {
        /// The DID resolved.
        did: String,
        /// The `id` the document states.
        found: String,
    },
    /// The handle resolves to a DID whose document does not claim it (G.31).
    #[error("handle {handle} resolves to {did}, whose document claims {claimed} instead")]
    HandleMismatch {
        /// The handle.
        handle: String,
        /// The DID it resolved to.
        did: String,
        /// The handle the document claims, or `no handle`.
        claimed: String,
    },
    /// The DID document names no valid `#atproto_pds` service (F.27).
    #[error("DID {did} has no PDS: {reason}")]
    NoPdsEndpoint {
        /// The DID.
        did: String,
        /// Why no entry qualified.
        reason: String,
    },
    /// A server answered with an unexpected status.
    #[error("{url} answered HTTP {status}")]
    UnexpectedStatus {
        /// The URL, without query.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The URL was refused by the hardened HTTP path (not https, or a non-public address).
    #[error("refused to fetch {url}: {reason}")]
    ForbiddenTarget {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A lookup took too long.
    #[error("timed out: {what}")]
    Timeout {
        /// What timed out.
        what: String,
    },
    /// A response was larger than allowed.
    #[error("the response from {url} exceeds {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// Any other network or DNS failure; retrying later may help.
    #[error("network error: {what}")]
    Network {
        /// What failed.
        what: String,
        /// The underlying error.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
}

impl IdentityError {
    /// True for answers about the identity itself (not found, tombstoned), which may be cached
    /// briefly; false for transport failures, which must not be.
    #[must_use]
    pub fn is_negative_answer(&self) -> bool {
        matches!(
            self,
            Self::HandleNotFound { .. } | Self::DidNotFound { .. } | Self::DidTombstoned { .. }
        )
    }
}

impl From<HttpError> for IdentityError {
    fn from(error: HttpError) -> Self {
        match error {
            HttpError::ForbiddenTarget { url, reason } => Self::ForbiddenTarget { url, reason },
            HttpError::Redirect { url } => Self::ForbiddenTarget {
                url,
                reason: "redirects are not followed here".to_owned(),
            },
            HttpError::TooLarge { url, limit } => Self::TooLarge { url, limit },
            HttpError::Timeout { url } => Self::Timeout { what: url },
            HttpError::Network { url, source } => Self::Network {
                what: url,
                source: Some(Arc::from(source)),
            },
        }
    }
}
