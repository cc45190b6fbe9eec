//! One process of the cross-process refresh storm (issue #9): it resumes a session from a shared
//! store, waits for `go` on stdin, makes N concurrent calls, and prints what it saw as JSON:
//! `{"grants", "nonce_retries", "failed", "ms"}` (successful `refresh_token` grants it made).

use std::io::BufRead;
use std::sync::Arc;
use std::time::Instant;

use atoauth::OAuthClient;
use atoauth::client_metadata::LoopbackClient;
use atoauth::http::{HardenedClient, TargetPolicy};
use atoauth::identity::{HandleResolution, IdentityResolver};
use atoauth::secret::SessionId;
use atoauth::store::{RefreshLock, SessionStore};
use atoauth::syntax::{Did, Nsid};
use atoauth_testkit::RecordingHttp;

struct Args {
    db: String,
    prefix: String,
    plc: url::Url,
    pds: url::Url,
    did: Did,
    session: SessionId,
    calls: usize,
    scope: String,
}

fn parse() -> Result<Args, String> {
    let mut values = std::collections::HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(name) = args.next() {
        let value = args.next().ok_or(format!("{name} needs a value"))?;
        values.insert(name.trim_start_matches("--").to_owned(), value);
    }
    let get = |name: &str| {
        values
            .get(name)
            .cloned()
            .ok_or(format!("--{name} is required"))
    };
    Ok(Args {
        db: get("db")?,
        prefix: values.get("prefix").cloned().unwrap_or_default(),
        plc: get("plc")?.parse().map_err(|e| format!("--plc: {e}"))?,
        pds: get("pds")?.parse().map_err(|e| format!("--pds: {e}"))?,
        did: Did::new(&get("did")?).map_err(|e| e.to_string())?,
        session: SessionId::new(get("session")?),
        calls: get("calls")?.parse().map_err(|e| format!("--calls: {e}"))?,
        scope: get("scope")?,
    })
}

type Stores = (Arc<dyn SessionStore>, Arc<dyn RefreshLock>);

async fn stores(db: &str, prefix: &str) -> Result<Stores, String> {
    if db.starts_with("postgres://") {
        let pool = atoauth_sqlx::sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .connect(db)
            .await
            .map_err(|e| e.to_string())?;
        let store = Arc::new(
            atoauth_sqlx::PostgresStore::from_pool(pool, prefix)
                .await
                .map_err(|e| e.to_string())?,
        );
        Ok((store.clone(), store))
    } else if db.starts_with("redis://") {
        let store = Arc::new(
            atoauth_redis::RedisStore::connect(db, prefix)
                .await
                .map_err(|e| e.to_string())?,
        );
        Ok((store.clone(), store))
    } else {
        let store = Arc::new(
            atoauth_sqlx::SqliteStore::open(std::path::Path::new(db))
                .await
                .map_err(|e| e.to_string())?,
        );
        Ok((store.clone(), store))
    }
}

async fn run(args: Args) -> Result<serde_json::Value, String> {
    let (sessions, lock) = stores(&args.db, &args.prefix).await?;
    let hardened = HardenedClient::builder()
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .build()
        .map_err(|e| e.to_string())?;
    let http = RecordingHttp::new(Arc::new(hardened));
    let resolver = IdentityResolver::builder()
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .plc_url(args.plc.clone())
        .handle_resolution(HandleResolution::Service(args.pds.clone()))
        .build()
        .map_err(|e| e.to_string())?;
    let loopback = LoopbackClient::new(["http://127.0.0.1/callback"], Some(&args.scope))
        .map_err(|e| e.to_string())?;
    let client = OAuthClient::builder()
        .loopback(loopback)
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .http_client(Arc::new(http.clone()))
        .identity_resolver(resolver)
        .session_store(sessions)
        .refresh_lock(lock)
        .build()
        .map_err(|e| e.to_string())?;
    let nsid = Nsid::new("com.atproto.server.getSession").map_err(|e| e.to_string())?;

    println!("ready");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;

    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.calls);
    for _ in 0..args.calls {
        let (client, nsid, did, id) = (
            client.clone(),
            nsid.clone(),
            args.did.clone(),
            args.session.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let session = client.restore(&did, &id).await?;
            session.query::<serde_json::Value>(&nsid, &[]).await
        }));
    }
    let mut failed = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                // The whole cause chain: a transport failure says which step broke.
                let mut causes = String::new();
                let mut source = std::error::Error::source(&error);
                while let Some(cause) = source {
                    causes.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                eprintln!("call failed: {error}{causes}");
                failed += 1;
            }
            Err(error) => {
                eprintln!("task failed: {error}");
                failed += 1;
            }
        }
    }
    let nonce_retries = http
        .exchanges()
        .iter()
        .filter(|e| e.grant_type.as_deref() == Some("refresh_token") && e.status == Some(400))
        .count();
    Ok(serde_json::json!({
        "grants": http.successful_grants("refresh_token"),
        "nonce_retries": nonce_retries,
        "failed": failed,
        "ms": started.elapsed().as_millis(),
    }))
}

fn main() -> std::process::ExitCode {
    let outcome = parse().and_then(|args| {
        tokio::runtime::Runtime::new()
            .map_err(|e| e.to_string())?
            .block_on(run(args))
    });
    match outcome {
        Ok(report) => {
            println!("{report}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("storm-worker: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
