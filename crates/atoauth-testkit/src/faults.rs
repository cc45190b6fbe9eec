//! Deterministic fault injection (issue #6): an HTTP client that loses chosen exchanges or holds
//! them until the test says so, and a session store that fails chosen writes. Nothing here
//! sleeps: a held response waits for [`Gate::open`], and the test can wait for
//! [`Gate::reached`] to know the request is in flight.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use atoauth::http::{HttpClient, HttpError, HttpFuture, Request};
use atoauth::secret::SessionId;
use atoauth::store::{SessionData, SessionStore, StoreError};
use atoauth::syntax::Did;
use tokio::sync::Notify;

/// What happens to a matching exchange.
#[derive(Clone, Debug)]
pub enum Fault {
    /// The request never reaches the server; the client sees a network error.
    FailBeforeSending,
    /// The server processes the request, then the response is lost: the client sees a network
    /// error although the server acted (a rotated refresh token, for example).
    DropAfterProcessing,
    /// The request waits at the gate before it is sent.
    HoldBeforeSending(Gate),
}

/// A signal a test opens once; requests held at it then proceed.
#[derive(Clone, Debug, Default)]
pub struct Gate {
    inner: Arc<GateInner>,
}

#[derive(Debug, Default)]
struct GateInner {
    open: std::sync::atomic::AtomicBool,
    opened: Notify,
    reached: Notify,
    arrivals: AtomicUsize,
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets every held request through, now and later.
    pub fn open(&self) {
        self.inner.open.store(true, Ordering::SeqCst);
        self.inner.opened.notify_waiters();
    }

    /// Waits until a request has arrived at the gate.
    pub async fn reached(&self) {
        loop {
            let notified = self.inner.reached.notified();
            if self.inner.arrivals.load(Ordering::SeqCst) > 0 {
                return;
            }
            notified.await;
        }
    }

    async fn pass(&self) {
        self.inner.arrivals.fetch_add(1, Ordering::SeqCst);
        self.inner.reached.notify_waiters();
        loop {
            let opened = self.inner.opened.notified();
            if self.inner.open.load(Ordering::SeqCst) {
                return;
            }
            opened.await;
        }
    }
}

struct Rule {
    path_suffix: String,
    grant_type: Option<String>,
    fault: Fault,
    remaining: usize,
}

/// An HTTP client that applies [`Fault`]s to chosen exchanges, each a given number of times.
#[derive(Clone)]
pub struct FaultyHttp {
    inner: Arc<dyn HttpClient>,
    rules: Arc<Mutex<Vec<Rule>>>,
}

impl std::fmt::Debug for FaultyHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyHttp").finish_non_exhaustive()
    }
}

impl FaultyHttp {
    /// No faults yet.
    pub fn new(inner: Arc<dyn HttpClient>) -> Self {
        Self {
            inner,
            rules: Arc::default(),
        }
    }

    /// Applies `fault` to the next `times` requests whose path ends with `path_suffix` and, if
    /// given, whose form body has this `grant_type`.
    pub fn inject(&self, path_suffix: &str, grant_type: Option<&str>, fault: Fault, times: usize) {
        self.rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Rule {
                path_suffix: path_suffix.to_owned(),
                grant_type: grant_type.map(str::to_owned),
                fault,
                remaining: times,
            });
    }

    fn take_fault(&self, request: &Request) -> Option<Fault> {
        let grant = url::form_urlencoded::parse(request.body())
            .find(|(name, _)| name == "grant_type")
            .map(|(_, value)| value.into_owned());
        let mut rules = self
            .rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let rule = rules.iter_mut().find(|rule| {
            rule.remaining > 0
                && request.uri().path().ends_with(&rule.path_suffix)
                && (rule.grant_type.is_none() || rule.grant_type == grant)
        })?;
        rule.remaining -= 1;
        Some(rule.fault.clone())
    }
}

fn lost(request: &Request) -> HttpError {
    HttpError::Network {
        url: request.uri().path().to_owned(),
        source: "injected fault: connection lost".into(),
    }
}

impl HttpClient for FaultyHttp {
    fn send(&self, request: Request) -> HttpFuture<'_> {
        let fault = self.take_fault(&request);
        Box::pin(async move {
            match fault {
                None => self.inner.send(request).await,
                Some(Fault::FailBeforeSending) => Err(lost(&request)),
                Some(Fault::DropAfterProcessing) => {
                    let error = lost(&request);
                    let _ = self.inner.send(request).await;
                    Err(error)
                }
                Some(Fault::HoldBeforeSending(gate)) => {
                    gate.pass().await;
                    self.inner.send(request).await
                }
            }
        })
    }
}

/// A session store whose next `upsert`s fail on request.
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn SessionStore>,
    failing_upserts: AtomicUsize,
}

impl FaultyStore {
    /// Delegates to `inner`.
    pub fn new(inner: Arc<dyn SessionStore>) -> Self {
        Self {
            inner,
            failing_upserts: AtomicUsize::new(0),
        }
    }

    /// The next `count` upserts fail with a backend error.
    pub fn fail_next_upserts(&self, count: usize) {
        self.failing_upserts.store(count, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl SessionStore for FaultyStore {
    async fn get(&self, did: &Did, id: &SessionId) -> Result<Option<SessionData>, StoreError> {
        self.inner.get(did, id).await
    }

    async fn upsert(&self, session: &SessionData) -> Result<(), StoreError> {
        let failing = self
            .failing_upserts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if failing.is_ok() {
            return Err(StoreError::backend(std::io::Error::other(
                "injected fault: write failed",
            )));
        }
        self.inner.upsert(session).await
    }

    async fn delete(&self, did: &Did, id: &SessionId) -> Result<bool, StoreError> {
        self.inner.delete(did, id).await
    }

    async fn list_by_did(&self, did: &Did) -> Result<Vec<SessionData>, StoreError> {
        self.inner.list_by_did(did).await
    }

    async fn list_all(&self) -> Result<Vec<SessionData>, StoreError> {
        self.inner.list_all().await
    }
}

/// Marks a stored session as expired: `expires_at` ten minutes in the past.
///
/// # Panics
/// When the session is not in the store or the store fails.
pub async fn expire_session(store: &dyn SessionStore, did: &Did, id: &SessionId) {
    let mut session = store
        .get(did, id)
        .await
        .expect("the store answers")
        .expect("the session is stored");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    session.expires_at = Some(now - 600);
    store.upsert(&session).await.expect("the store answers");
}
