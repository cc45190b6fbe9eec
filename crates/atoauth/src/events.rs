//! Session events (Q4): the app learns when a session's tokens change and when, and why, a
//! session is deleted.

use std::sync::Arc;

use crate::error::SessionEndCause;
use crate::secret::SessionId;
use crate::syntax::Did;

/// Something that happened to a stored session.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A sign-in created the session.
    Created {
        /// The account.
        did: Did,
        /// The session.
        session_id: SessionId,
    },
    /// New tokens were stored (a refresh).
    Updated {
        /// The account.
        did: Did,
        /// The session.
        session_id: SessionId,
    },
    /// A refresh failed and the session stays (the server could not be reached, the store
    /// failed, …): the next call tries again.
    RefreshFailed {
        /// The account.
        did: Did,
        /// The session.
        session_id: SessionId,
        /// What went wrong.
        error: String,
    },
    /// A refresh came back with another grant than before: the authorization server expanded
    /// a permission set (`include:`) anew and the set had changed, or it narrowed the grant.
    /// Re-check what the session may do ([`crate::OAuthSession::permissions`]).
    ScopeChanged {
        /// The account.
        did: Did,
        /// The session.
        session_id: SessionId,
        /// The grant before the refresh.
        before: String,
        /// The grant now.
        after: String,
    },
    /// The session was deleted.
    Deleted {
        /// The account.
        did: Did,
        /// The session.
        session_id: SessionId,
        /// Why.
        cause: SessionEndCause,
    },
}

/// Receives [`SessionEvent`]s. Called inline: keep it quick (send to a channel for real work).
#[cfg(not(target_arch = "wasm32"))]
pub type SessionEventHandler = Arc<dyn Fn(&SessionEvent) + Send + Sync>;
/// Receives [`SessionEvent`]s. Called inline: keep it quick. In a browser it need not be
/// `Send` (a JS callback, a `BroadcastChannel`).
#[cfg(target_arch = "wasm32")]
pub type SessionEventHandler = Arc<dyn Fn(&SessionEvent)>;
