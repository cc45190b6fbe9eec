//! Pieces of the side-by-side BFF benchmark (`compare-bff`): a fast PDS stand-in, a browser
//! signed in to a BFF, wrk load with the BFF process's CPU measured from `/proc`, and the cost
//! of resuming sessions from each store.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atoauth::OAuthClient;
use atoauth::client_metadata::LoopbackClient;
use atoauth::http::TargetPolicy;
use atoauth::store::{SessionData, SessionStore};
use atoauth::syntax::{Did, Nsid};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use crate::{Account, Consent, http_client, pds};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The benchmark's upstream: answers every XRPC call with fixed JSON once the request carries a
/// DPoP-bound token and a proof (401 otherwise), like a PDS that does no work.
#[derive(Debug)]
pub struct Standin {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Standin {
    /// `http://127.0.0.1:<port>`.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const STANDIN_BODY: &str =
    r#"{"handle":"alice.test","did":"did:plc:standinstandinstandinst","active":true}"#;

/// Starts the stand-in on a free port of 127.0.0.1.
///
/// # Errors
/// When it cannot listen.
pub async fn standin() -> Result<Standin, Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |request: hyper::Request<hyper::body::Incoming>| async move {
                        let bound = request
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .is_some_and(|v| v.starts_with("DPoP "))
                            && request.headers().contains_key("dpop");
                        let (status, body) = if bound {
                            (200, STANDIN_BODY)
                        } else {
                            (401, r#"{"error":"AuthenticationRequired"}"#)
                        };
                        hyper::Response::builder()
                            .status(status)
                            .header("content-type", "application/json; charset=utf-8")
                            .header("dpop-nonce", "standin-nonce")
                            .body(Full::new(Bytes::from_static(body.as_bytes())))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(Standin { url, task })
}

/// Reads `child`'s stderr until `pick` finds what it wants in a line; the rest is drained.
///
/// # Errors
/// When the child closes stderr first.
pub fn read_line_with(
    child: &mut Child,
    pick: impl Fn(&str) -> Option<String>,
) -> Result<String, Error> {
    let stderr = child.stderr.take().ok_or("no stderr pipe")?;
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(found) = pick(&line) {
            std::thread::spawn(move || lines.for_each(drop));
            return Ok(found);
        }
        seen.push_str(&line);
        seen.push('\n');
    }
    Err(format!("the process ended before it was ready:\n{seen}").into())
}

/// Reads `child`'s stdout until a JSON line; the rest is drained.
///
/// # Errors
/// When the child closes stdout first.
pub fn read_stdout_json(child: &mut Child) -> Result<serde_json::Value, Error> {
    let stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line?) {
            std::thread::spawn(move || lines.for_each(drop));
            return Ok(value);
        }
    }
    Err("the process ended before it was ready".into())
}

/// A BFF process, for its CPU time and memory.
#[derive(Clone, Copy, Debug)]
pub struct Process {
    pid: u32,
}

impl Process {
    /// The process of `child`.
    #[must_use]
    pub fn of(child: &Child) -> Self {
        Self { pid: child.id() }
    }

    /// User plus system CPU seconds so far.
    fn cpu_seconds(self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        // Fields after the command name (which may hold spaces) — utime and stime are 14 and 15.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<f64> = after
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0.0))
            .collect();
        let ticks = fields.get(11).copied().unwrap_or(0.0) + fields.get(12).copied().unwrap_or(0.0);
        ticks / clock_ticks()
    }

    /// Peak resident memory in bytes (`VmHWM`).
    #[must_use]
    pub fn peak_rss(self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib * 1024.0)
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// A browser signed in to a BFF: the proxied URL to load and its cookie.
#[derive(Debug)]
pub struct SignedInBrowser {
    url: String,
    cookie: String,
}

fn cookie_of(response: &reqwest::Response) -> Result<String, Error> {
    Ok(response
        .headers()
        .get("set-cookie")
        .ok_or("no cookie")?
        .to_str()?
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned())
}

fn form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

impl SignedInBrowser {
    /// Signs `account` in to `atoauth serve` at `base` through its pages.
    ///
    /// # Errors
    /// When a step of the sign-in fails.
    pub async fn atoauth(base: &str, account: &Account) -> Result<Self, Error> {
        let http = http_client();
        let start = http.get(format!("{base}/")).send().await?;
        let cookie = cookie_of(&start)?;
        let page = start.text().await?;
        let marker = "name=csrf value=\"";
        let at = page.find(marker).ok_or("no CSRF token")? + marker.len();
        let csrf = page[at..].split('"').next().unwrap_or_default().to_owned();
        let login = http
            .post(format!("{base}/oauth/login"))
            .header("cookie", &cookie)
            .header("origin", base)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("identifier", &account.handle), ("csrf", &csrf)]))
            .send()
            .await?;
        let done = Self::finish(base, &login, "/oauth/callback", &cookie, account).await?;
        Self::checked(base, cookie_of(&done)?).await
    }

    /// Signs `account` in to the TS BFF at `base`.
    ///
    /// # Errors
    /// When a step of the sign-in fails.
    pub async fn typescript(base: &str, account: &Account) -> Result<Self, Error> {
        let login = http_client()
            .post(format!("{base}/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("identifier", &account.handle)]))
            .send()
            .await?;
        let done = Self::finish(base, &login, "/callback", "", account).await?;
        Self::checked(base, cookie_of(&done)?).await
    }

    /// Consents at the PDS and follows the redirect to the BFF's callback.
    async fn finish(
        base: &str,
        login: &reqwest::Response,
        callback: &str,
        cookie: &str,
        account: &Account,
    ) -> Result<reqwest::Response, Error> {
        let authorize = login
            .headers()
            .get("location")
            .ok_or_else(|| format!("the sign-in did not redirect: {}", login.status()))?
            .to_str()?
            .to_owned();
        let redirect = pds()
            .authorize(&authorize, account, Consent::Accept)
            .await
            .map_err(|e| format!("{e:?}"))?;
        let mut request = http_client().get(format!(
            "{base}{callback}?{}",
            redirect.query().unwrap_or_default()
        ));
        if !cookie.is_empty() {
            request = request.header("cookie", cookie);
        }
        Ok(request.send().await?)
    }

    async fn checked(base: &str, cookie: String) -> Result<Self, Error> {
        let url = format!("{base}/xrpc/com.atproto.server.getSession");
        let status = http_client()
            .get(&url)
            .header("cookie", &cookie)
            .send()
            .await?
            .status();
        if status != 200 {
            return Err(format!("{url} answered {status} after sign-in").into());
        }
        Ok(Self { url, cookie })
    }
}

/// What one load run measured.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    /// Requests per second.
    pub rps: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    requests: f64,
    cpu_seconds: f64,
}

impl Measured {
    /// Requests per CPU-second of the BFF process: requests/s ÷ its CPU-seconds per second.
    #[must_use]
    pub fn per_core(&self) -> f64 {
        self.requests / self.cpu_seconds
    }

    /// The BFF process's CPU time per request, in µs.
    #[must_use]
    pub fn cpu_us_per_request(&self) -> f64 {
        self.cpu_seconds * 1e6 / self.requests
    }

    /// The table cell.
    #[must_use]
    pub fn cell(&self) -> String {
        format!(
            "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms; {:.0} req/s per core; {:.0} µs CPU/request",
            self.rps,
            self.p50_ms,
            self.p99_ms,
            self.per_core(),
            self.cpu_us_per_request()
        )
    }
}

/// wrk runs of one length.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    seconds: u64,
}

impl Load {
    /// Runs of `seconds` each.
    #[must_use]
    pub fn new(seconds: u64) -> Self {
        Self { seconds }
    }

    /// Loads `browser`'s proxied URL with `connections` connections; the BFF `process`'s CPU is
    /// read before and after.
    ///
    /// # Errors
    /// When wrk is missing or any answer was not 2xx.
    pub fn run(
        &self,
        process: &Process,
        browser: &SignedInBrowser,
        connections: usize,
    ) -> Result<Measured, Error> {
        let threads = connections.min(2);
        let cpu_before = process.cpu_seconds();
        let output = Command::new("wrk")
            .arg(format!("-t{threads}"))
            .arg(format!("-c{connections}"))
            .arg(format!("-d{}s", self.seconds))
            .arg("--latency")
            .args(["-H", &format!("Cookie: {}", browser.cookie)])
            .arg(&browser.url)
            .output()
            .map_err(|e| format!("wrk: {e}"))?;
        let cpu_seconds = process.cpu_seconds() - cpu_before;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if text.contains("Non-2xx") || !output.status.success() {
            return Err(format!("the BFF answered errors under load:\n{text}").into());
        }
        let parse = || -> Option<Measured> {
            let requests: f64 = text
                .lines()
                .find(|l| l.contains(" requests in "))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            let rps = text
                .lines()
                .find(|l| l.starts_with("Requests/sec:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some(Measured {
                rps,
                p50_ms: wrk_ms(&text, "50%")?,
                p99_ms: wrk_ms(&text, "99%")?,
                requests,
                cpu_seconds,
            })
        };
        parse().ok_or_else(|| format!("cannot read wrk's report:\n{text}").into())
    }
}

/// A latency from wrk's `--latency` table, in ms.
fn wrk_ms(text: &str, label: &str) -> Option<f64> {
    let value = text
        .lines()
        .find(|l| l.trim_start().starts_with(label))?
        .split_whitespace()
        .nth(1)?;
    let (number, unit) = value.split_at(value.find(|c: char| c.is_alphabetic())?);
    let number: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => number / 1000.0,
        "s" => number * 1000.0,
        _ => number,
    })
}

/// Makes every session in the SQLite store at `db` call `url` as its PDS.
///
/// # Errors
/// The store's.
pub async fn point_sessions_at(db: &Path, url: &str) -> Result<(), Error> {
    let store = atoauth_sqlx::SqliteStore::open(db).await?;
    for mut session in store.list_all().await? {
        session.pds = url.parse()?;
        store.upsert(&session).await?;
    }
    Ok(())
}

fn loopback_client(store: Arc<dyn SessionStore>) -> Result<OAuthClient, Error> {
    Ok(OAuthClient::builder()
        .loopback(LoopbackClient::new(
            ["http://127.0.0.1/callback"],
            Some("atproto transition:generic"),
        )?)
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .identity_resolver(pds().identity_resolver())
        .session_store(store)
        .build()?)
}

/// A session of `account`, signed in with the loopback client: its stored record.
async fn signed_in_record(account: &Account) -> Result<SessionData, Error> {
    let store = Arc::new(atoauth::store::MemorySessionStore::default());
    let client = loopback_client(store.clone())?;
    let session = pds().sign_in(&client, account).await;
    store
        .get(session.did(), session.session_id())
        .await?
        .ok_or_else(|| "the session was not stored".into())
}

/// The median latency of `OAuthSession::query` (getSession) against the stand-in at `url`, one
/// call at a time for `duration`: the SDK called directly, without a proxy in between.
///
/// # Errors
/// When signing in or a call fails.
pub async fn sdk_direct_latency(url: &str, duration: Duration) -> Result<Duration, Error> {
    let mut record = signed_in_record(pds().bob()).await?;
    record.pds = url.parse()?;
    let store = Arc::new(atoauth::store::MemorySessionStore::default());
    store.upsert(&record).await?;
    let client = loopback_client(store)?;
    let session = client.restore(&record.did, &record.session_id).await?;
    let nsid = Nsid::new("com.atproto.server.getSession")?;
    let deadline = Instant::now() + duration;
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        let started = Instant::now();
        session.query::<serde_json::Value>(&nsid, &[]).await?;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    latencies
        .get(latencies.len() / 2)
        .copied()
        .ok_or_else(|| "no call completed".into())
}

/// What resuming sessions costs with one store.
#[derive(Debug)]
pub struct ResumeCost {
    /// The store.
    pub store: &'static str,
    /// Median `restore` time with one session stored, µs.
    pub resume_us_empty: f64,
    /// Median `restore` time with `count` sessions stored, µs.
    pub resume_us_full: f64,
    /// What `count` sessions take in the store.
    pub storage: String,
}

/// For SQLite (in `dir`), PostgreSQL and Redis: `restore` with one session stored and with
/// `count`, and the space `count` sessions take.
///
/// # Errors
/// A store's or a sign-in's.
pub async fn resume_costs(dir: &Path, count: usize) -> Result<Vec<ResumeCost>, Error> {
    let template = signed_in_record(pds().bob()).await?;
    let sqlite_path = dir.join("resume.db");
    let postgres_url = crate::servers::postgres_database("bff");
    let redis_port = crate::servers::redis().port;
    let mut costs = Vec::new();
    for store_name in ["SQLite", "PostgreSQL", "Redis"] {
        let store: Arc<dyn SessionStore> = match store_name {
            "SQLite" => Arc::new(atoauth_sqlx::SqliteStore::open(&sqlite_path).await?),
            "PostgreSQL" => Arc::new(atoauth_sqlx::PostgresStore::connect(&postgres_url).await?),
            _ => Arc::new(
                atoauth_redis::RedisStore::connect(&crate::servers::redis_url(), "bff:").await?,
            ),
        };
        let before = storage_bytes(store_name, &sqlite_path, &postgres_url, redis_port);
        store.upsert(&template).await?;
        let client = loopback_client(store.clone())?;
        let resume_us_empty = median_restore_us(&client, &template).await?;
        fill(&store, &template, count - 1).await?;
        let resume_us_full = median_restore_us(&client, &template).await?;
        let after = storage_bytes(store_name, &sqlite_path, &postgres_url, redis_port);
        let bytes = after - before;
        costs.push(ResumeCost {
            store: store_name,
            resume_us_empty,
            resume_us_full,
            storage: format!(
                "{:.0} MB {} ({:.1} KB per session)",
                bytes / 1e6,
                if store_name == "Redis" {
                    "of memory"
                } else {
                    "on disk"
                },
                bytes / 1e3 / count as f64
            ),
        });
    }
    Ok(costs)
}

async fn median_restore_us(client: &OAuthClient, record: &SessionData) -> Result<f64, Error> {
    let mut times = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let started = Instant::now();
        client.restore(&record.did, &record.session_id).await?;
        times.push(started.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Stores `count` more sessions like `template`, each of its own account.
async fn fill(
    store: &Arc<dyn SessionStore>,
    template: &SessionData,
    count: usize,
) -> Result<(), Error> {
    const WRITERS: usize = 16;
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (store, template) = (Arc::clone(store), template.clone());
        tasks.push(tokio::spawn(async move {
            for i in (writer..count).step_by(WRITERS) {
                let mut session = template.clone();
                session.did = synthetic_did(i)?;
                session.session_id = atoauth::secret::SessionId::new(format!("bench-{i}"));
                store.upsert(&session).await?;
            }
            Ok::<(), Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// A distinct well-formed `did:plc` for `i`.
fn synthetic_did(i: usize) -> Result<Did, Error> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut n = i;
    let mut id = Vec::with_capacity(24);
    for _ in 0..24 {
        id.push(ALPHABET[n % 32]);
        n /= 32;
    }
    Ok(Did::new(&format!("did:plc:{}", String::from_utf8(id)?))?)
}

/// The store's size: SQLite's files, PostgreSQL's session table, Redis's memory.
fn storage_bytes(store: &str, sqlite: &Path, postgres: &str, redis_port: u16) -> f64 {
    let command_output = |command: &mut Command| {
        command
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    match store {
        "SQLite" => ["", "-wal", "-shm"]
            .iter()
            .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", sqlite.display())).ok())
            .map(|m| m.len() as f64)
            .sum(),
        "PostgreSQL" => command_output(Command::new("psql").arg(postgres).args([
            "-tAc",
            "SELECT COALESCE(pg_total_relation_size(to_regclass('oauth_sessions')), 0)",
        ]))
        .trim()
        .parse()
        .unwrap_or(0.0),
        _ => command_output(
            Command::new("redis-cli")
                .args(["-p", &redis_port.to_string()])
                .args(["info", "memory"]),
        )
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0),
    }
}
