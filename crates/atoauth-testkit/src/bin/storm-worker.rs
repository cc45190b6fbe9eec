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
    let values = atoauth_testkit::worker::flags()?;
    let get = |name: &str| atoauth_testkit::worker::flag(&values, name);
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

async fn run(args: Args) -> Result<serde_json::Value, String> {
    // The stores' default lease: storms never leave a lock behind.
    let lease = std::time::Duration::from_secs(30);
    let (sessions, lock) =
        atoauth_testkit::worker::open_store(&args.db, &args.prefix, lease).await?;
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
