//! A worker that dies holding the refresh lock (issue #21): it resumes an expired session from a
//! shared store, refreshes it, and stops for ever at one point of the refresh, saying
//! `at <point>` on stdout so that the test can `kill -9` it there:
//!
//! - `before-send`: the lock is held, the refresh request not sent;
//! - `after-answer`: the PDS rotated the tokens, the new ones are not stored;
//! - `after-store`: the new tokens are stored, the lock not released.
//!
//! The line says too whether the PDS granted the refresh: `at after-answer granted=true`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use atoauth::OAuthClient;
use atoauth::client_metadata::LoopbackClient;
use atoauth::http::{HardenedClient, HttpClient, HttpFuture, Request, TargetPolicy};
use atoauth::identity::{HandleResolution, IdentityResolver};
use atoauth::secret::SessionId;
use atoauth::store::{RefreshLock, SessionData, SessionStore, StoreError};
use atoauth::syntax::Did;

/// Where the worker stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Point {
    BeforeSend,
    AfterAnswer,
    AfterStore,
}

impl Point {
    fn parse(value: &str) -> Result<Self, String> {
        match value {
            "before-send" => Ok(Self::BeforeSend),
            "after-answer" => Ok(Self::AfterAnswer),
            "after-store" => Ok(Self::AfterStore),
            other => Err(format!("unknown --point {other}")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::BeforeSend => "before-send",
            Self::AfterAnswer => "after-answer",
            Self::AfterStore => "after-store",
        }
    }
}

/// Whether the PDS answered this worker's refresh with new tokens.
static GRANTED: AtomicBool = AtomicBool::new(false);

/// Says where it stopped (and whether the PDS granted the refresh), then never returns.
async fn stop_at(point: Point) -> ! {
    println!(
        "at {} granted={}",
        point.name(),
        GRANTED.load(Ordering::SeqCst)
    );
    std::future::pending::<()>().await;
    unreachable!("a pending future never completes")
}

fn is_refresh(request: &Request) -> bool {
    url::form_urlencoded::parse(request.body())
        .any(|(k, v)| k == "grant_type" && v == "refresh_token")
}

/// The HTTP path, stopping at a refresh request before or after it is sent.
struct StoppingHttp {
    inner: HardenedClient,
    point: Point,
}

impl HttpClient for StoppingHttp {
    fn send(&self, request: Request) -> HttpFuture<'_> {
        let refresh = is_refresh(&request);
        Box::pin(async move {
            if refresh && self.point == Point::BeforeSend {
                stop_at(self.point).await;
            }
            let response = self.inner.send(request).await;
            if refresh && response.as_ref().is_ok_and(|r| r.status() == 200) {
                GRANTED.store(true, Ordering::SeqCst);
            }
            if refresh && self.point == Point::AfterAnswer {
                stop_at(self.point).await;
            }
            response
        })
    }
}

/// The session store, stopping after the refreshed session is stored.
#[derive(Debug)]
struct StoppingStore {
    inner: Arc<dyn SessionStore>,
    point: Point,
}

#[async_trait::async_trait]
impl SessionStore for StoppingStore {
    async fn get(&self, did: &Did, id: &SessionId) -> Result<Option<SessionData>, StoreError> {
        self.inner.get(did, id).await
    }
    async fn upsert(&self, session: &SessionData) -> Result<(), StoreError> {
        self.inner.upsert(session).await?;
        if self.point == Point::AfterStore {
            stop_at(self.point).await;
        }
        Ok(())
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

struct Args {
    db: String,
    prefix: String,
    lease_ms: u64,
    plc: url::Url,
    pds: url::Url,
    did: Did,
    session: SessionId,
    scope: String,
    point: Point,
}

fn parse() -> Result<Args, String> {
    let values = atoauth_testkit::worker::flags()?;
    let get = |name: &str| atoauth_testkit::worker::flag(&values, name);
    Ok(Args {
        db: get("db")?,
        prefix: values.get("prefix").cloned().unwrap_or_default(),
        lease_ms: get("lease-ms")?
            .parse()
            .map_err(|e| format!("--lease-ms: {e}"))?,
        plc: get("plc")?.parse().map_err(|e| format!("--plc: {e}"))?,
        pds: get("pds")?.parse().map_err(|e| format!("--pds: {e}"))?,
        did: Did::new(&get("did")?).map_err(|e| e.to_string())?,
        session: SessionId::new(get("session")?),
        scope: get("scope")?,
        point: Point::parse(&get("point")?)?,
    })
}

async fn run(args: Args) -> Result<(), String> {
    let lease = std::time::Duration::from_millis(args.lease_ms);
    let (sessions, lock): (Arc<dyn SessionStore>, Arc<dyn RefreshLock>) =
        atoauth_testkit::worker::open_store(&args.db, &args.prefix, lease).await?;
    let http = StoppingHttp {
        inner: HardenedClient::builder()
            .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
            .build()
            .map_err(|e| e.to_string())?,
        point: args.point,
    };
    let resolver = IdentityResolver::builder()
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .plc_url(args.plc)
        .handle_resolution(HandleResolution::Service(args.pds))
        .build()
        .map_err(|e| e.to_string())?;
    let client = OAuthClient::builder()
        .loopback(
            LoopbackClient::new(["http://127.0.0.1/callback"], Some(&args.scope))
                .map_err(|e| e.to_string())?,
        )
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .http_client(Arc::new(http))
        .identity_resolver(resolver)
        .session_store(Arc::new(StoppingStore {
            inner: sessions,
            point: args.point,
        }))
        .refresh_lock(lock)
        .build()
        .map_err(|e| e.to_string())?;
    let session = client
        .restore(&args.did, &args.session)
        .await
        .map_err(|e| e.to_string())?;
    session.refresh().await.map_err(|e| e.to_string())?;
    Err("the refresh finished: the worker should have stopped in it".to_owned())
}

fn main() -> std::process::ExitCode {
    let outcome = parse().and_then(|args| {
        tokio::runtime::Runtime::new()
            .map_err(|e| e.to_string())?
            .block_on(run(args))
    });
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fault-worker: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
