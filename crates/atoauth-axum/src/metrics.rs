//! What the web layer counts and times, through the [`metrics`] facade: install any recorder
//! (the `atoauth serve --metrics-listen` one is Prometheus) and these series appear.
//!
//! Labels take a handful of fixed values each, never a DID, a handle or a path, so a scrape
//! stays small however many users there are.
//!
//! | series | kind | labels |
//! | --- | --- | --- |
//! | `atoauth_sign_ins_total` | counter | `result`: `ok`, `denied` (the user said no), `failed` |
//! | `atoauth_refreshes_total` | counter | `result`: `ok`, `rejected` (the session ended), `failed` (it stays) |
//! | `atoauth_sessions_ended_total` | counter | `cause`: see [`ended_cause`] |
//! | `atoauth_proxied_requests_total` | counter | `status`: `2xx`, `3xx`, `4xx`, `5xx` |
//! | `atoauth_upstream_duration_seconds` | histogram | `call`: `xrpc` (proxied), `sign_in_start` (resolution and PAR), `sign_in_finish` (token exchange and checks) |
//! | `atoauth_store_duration_seconds` | histogram | `op`: see [`STORE_OPS`] |
//! | `atoauth_active_sessions` | gauge | none: stored OAuth sessions, set by [`count_active_sessions`] |

use std::sync::Arc;
use std::time::{Duration, Instant};

use atoauth::SessionEndCause;
use atoauth::events::{SessionEvent, SessionEventHandler};
use atoauth::secret::SessionId;
use atoauth::store::{BrowserSession, BrowserSessionStore, SessionData, SessionStore, StoreError};
use atoauth::syntax::Did;
use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};

/// Sign-ins that reached the callback, by result.
pub const SIGN_INS: &str = "atoauth_sign_ins_total";
/// Token refreshes, by result.
pub const REFRESHES: &str = "atoauth_refreshes_total";
/// Deleted OAuth sessions, by cause.
pub const SESSIONS_ENDED: &str = "atoauth_sessions_ended_total";
/// Requests through the XRPC proxy, by status class.
pub const PROXIED: &str = "atoauth_proxied_requests_total";
/// Time spent waiting for the PDS or the authorization server.
pub const UPSTREAM_SECONDS: &str = "atoauth_upstream_duration_seconds";
/// Time spent in the stores.
pub const STORE_SECONDS: &str = "atoauth_store_duration_seconds";
/// OAuth sessions in the store.
pub const ACTIVE_SESSIONS: &str = "atoauth_active_sessions";

const SIGN_IN_RESULTS: [&str; 3] = ["ok", "denied", "failed"];
const REFRESH_RESULTS: [&str; 3] = ["ok", "rejected", "failed"];
const STATUS_CLASSES: [&str; 4] = ["2xx", "3xx", "4xx", "5xx"];
const UPSTREAM_CALLS: [&str; 3] = ["xrpc", "sign_in_start", "sign_in_finish"];
const ENDED_CAUSES: [&str; 8] = [
    "signed_out",
    "refresh_rejected",
    "token_rejected",
    "expired",
    "server_changed",
    "key_removed",
    "client_changed",
    "other",
];
/// The `op` label values of [`STORE_SECONDS`].
pub const STORE_OPS: [&str; 8] = [
    "get_session",
    "put_session",
    "delete_session",
    "list_sessions",
    "get_browser",
    "put_browser",
    "delete_browser",
    "count_sessions",
];

/// The bucket bounds, in seconds, for the `_seconds` histograms: 0.5 ms to 10 s.
pub const SECONDS_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Describes every series and creates each with every label value at zero, so that a scrape
/// before any traffic already lists them all. Call it once, after installing the recorder.
pub fn register() {
    describe_counter!(SIGN_INS, "Sign-ins that reached the callback, by result");
    describe_counter!(REFRESHES, "OAuth token refreshes, by result");
    describe_counter!(SESSIONS_ENDED, "OAuth sessions deleted, by cause");
    describe_counter!(PROXIED, "Requests through the XRPC proxy, by status class");
    describe_histogram!(
        UPSTREAM_SECONDS,
        Unit::Seconds,
        "Time waiting for the PDS or the authorization server"
    );
    describe_histogram!(STORE_SECONDS, Unit::Seconds, "Time spent in the stores");
    describe_gauge!(ACTIVE_SESSIONS, "OAuth sessions in the store");
    for result in SIGN_IN_RESULTS {
        counter!(SIGN_INS, "result" => result).absolute(0);
    }
    for result in REFRESH_RESULTS {
        counter!(REFRESHES, "result" => result).absolute(0);
    }
    for cause in ENDED_CAUSES {
        counter!(SESSIONS_ENDED, "cause" => cause).absolute(0);
    }
    for status in STATUS_CLASSES {
        counter!(PROXIED, "status" => status).absolute(0);
    }
    for call in UPSTREAM_CALLS {
        let _ = metrics::histogram!(UPSTREAM_SECONDS, "call" => call);
    }
    for op in STORE_OPS {
        let _ = metrics::histogram!(STORE_SECONDS, "op" => op);
    }
    gauge!(ACTIVE_SESSIONS).set(0.0);
}

/// A session-event handler that counts refreshes and ended sessions, and moves the
/// active-sessions gauge: pass it to
/// `OAuthClientBuilder::on_session_event`.
#[must_use]
pub fn event_handler() -> SessionEventHandler {
    // The gauge moves with this process's sign-ins and deletions at once;
    // `count_active_sessions` brings in what other processes did.
    Arc::new(|event: &SessionEvent| match event {
        SessionEvent::Created { .. } => gauge!(ACTIVE_SESSIONS).increment(1.0),
        SessionEvent::Updated { .. } => counter!(REFRESHES, "result" => "ok").increment(1),
        SessionEvent::RefreshFailed { .. } => {
            counter!(REFRESHES, "result" => "failed").increment(1);
        }
        SessionEvent::Deleted { cause, .. } => {
            if matches!(cause, SessionEndCause::RefreshRejected { .. }) {
                counter!(REFRESHES, "result" => "rejected").increment(1);
            }
            counter!(SESSIONS_ENDED, "cause" => ended_cause(cause)).increment(1);
            gauge!(ACTIVE_SESSIONS).decrement(1.0);
        }
        _ => {}
    })
}

/// The `cause` label of an ended session.
#[must_use]
pub fn ended_cause(cause: &SessionEndCause) -> &'static str {
    match cause {
        SessionEndCause::SignedOut => "signed_out",
        SessionEndCause::RefreshRejected { .. } => "refresh_rejected",
        SessionEndCause::TokenRejected => "token_rejected",
        SessionEndCause::Expired => "expired",
        SessionEndCause::AuthorizationServerChanged { .. } => "server_changed",
        SessionEndCause::KeyRemoved { .. } => "key_removed",
        SessionEndCause::ClientChanged => "client_changed",
        _ => "other",
    }
}

/// Sets [`ACTIVE_SESSIONS`] from the store now and then every `every`, until the task is
/// dropped. A failed count leaves the last value.
pub async fn count_active_sessions(store: Arc<dyn SessionStore>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let started = Instant::now();
        let count = store.count().await;
        store_time("count_sessions", started);
        match count {
            Ok(count) => gauge!(ACTIVE_SESSIONS).set(count as f64),
            Err(error) => tracing::warn!(%error, "could not count the stored sessions"),
        }
    }
}

pub(crate) fn sign_in(result: &'static str) {
    counter!(SIGN_INS, "result" => result).increment(1);
}

/// Middleware on the proxy route: counts every answer by status class.
pub(crate) async fn count_proxied(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let response = next.run(request).await;
    proxied(response.status().as_u16());
    response
}

fn proxied(status: u16) {
    let class = match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    counter!(PROXIED, "status" => class).increment(1);
}

pub(crate) fn upstream_time(call: &'static str, started: Instant) {
    metrics::histogram!(UPSTREAM_SECONDS, "call" => call).record(started.elapsed());
}

pub(crate) fn store_time(op: &'static str, started: Instant) {
    metrics::histogram!(STORE_SECONDS, "op" => op).record(started.elapsed());
}

/// A store that times each call into [`STORE_SECONDS`]: wrap the stores you give the client
/// and the web layer with [`metered_sessions`] and [`metered_browsers`].
#[derive(Debug)]
struct Metered<T: ?Sized>(Arc<T>);

/// `store`, timed into [`STORE_SECONDS`].
#[must_use]
pub fn metered_sessions(store: Arc<dyn SessionStore>) -> Arc<dyn SessionStore> {
    Arc::new(Metered(store))
}

/// `store`, timed into [`STORE_SECONDS`].
#[must_use]
pub fn metered_browsers(store: Arc<dyn BrowserSessionStore>) -> Arc<dyn BrowserSessionStore> {
    Arc::new(Metered(store))
}

/// Runs `call`, timing it as `op`.
async fn timed<R>(op: &'static str, call: impl Future<Output = R>) -> R {
    let started = Instant::now();
    let result = call.await;
    store_time(op, started);
    result
}

#[async_trait::async_trait]
impl SessionStore for Metered<dyn SessionStore> {
    async fn get(&self, did: &Did, id: &SessionId) -> Result<Option<SessionData>, StoreError> {
        timed("get_session", self.0.get(did, id)).await
    }

    async fn upsert(&self, session: &SessionData) -> Result<(), StoreError> {
        timed("put_session", self.0.upsert(session)).await
    }

    async fn delete(&self, did: &Did, id: &SessionId) -> Result<bool, StoreError> {
        timed("delete_session", self.0.delete(did, id)).await
    }

    async fn list_by_did(&self, did: &Did) -> Result<Vec<SessionData>, StoreError> {
        timed("list_sessions", self.0.list_by_did(did)).await
    }

    async fn list_all(&self) -> Result<Vec<SessionData>, StoreError> {
        timed("list_sessions", self.0.list_all()).await
    }

    async fn count(&self) -> Result<usize, StoreError> {
        self.0.count().await
    }
}

#[async_trait::async_trait]
impl BrowserSessionStore for Metered<dyn BrowserSessionStore> {
    async fn put_browser(
        &self,
        id: &SessionId,
        session: &BrowserSession,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        timed("put_browser", self.0.put_browser(id, session, ttl)).await
    }

    async fn get_browser(&self, id: &SessionId) -> Result<Option<BrowserSession>, StoreError> {
        timed("get_browser", self.0.get_browser(id)).await
    }

    async fn delete_browser(&self, id: &SessionId) -> Result<(), StoreError> {
        timed("delete_browser", self.0.delete_browser(id)).await
    }
}
