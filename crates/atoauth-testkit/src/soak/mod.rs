//! A long run of `atoauth serve` against the official PDS (issue #21): many signed-in browsers,
//! steady proxied traffic, access tokens expired on purpose, sign-outs and sign-ins — with the
//! server's memory, descriptors and store rows read all along. `SoakReport::flat` judges it.
//!
//! Event counts, not rates, are fixed: whatever the length, a run has 24 forced expiries, 12
//! sign-out/sign-in cycles and 60 readings, so a 2-minute run sees each event many times and a
//! 20-minute run the same events spread out.

mod report;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use atoauth::SessionStore;
use atoauth_sqlx::SqliteStore;
use tokio::sync::Mutex;

pub use report::{Sample, SoakReport};

use crate::bff::read_line_with;
use crate::{Account, Consent, expire_session, pds};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// What to run.
#[derive(Clone, Debug)]
pub struct SoakConfig {
    /// The run's length after sign-in.
    pub minutes: f64,
    /// The `atoauth` binary.
    pub atoauth: PathBuf,
    /// Browsers signed in at once.
    pub browsers: usize,
    /// Proxied requests per second, all browsers together.
    pub requests_per_second: f64,
}

const EXPIRIES: u32 = 24;
const CYCLES: u32 = 12;
const READINGS: u32 = 60;
const TRAFFIC_WORKERS: u32 = 4;

/// One browser: its cookie, the session it holds, and its own client address (through
/// `--trusted-proxy`, so each has its own sign-in budget).
struct Browser {
    address: String,
    cookie: Option<String>,
    session: Option<(atoauth::Did, atoauth::SessionId)>,
}

struct Soak {
    base: String,
    http: reqwest::Client,
    store: Arc<SqliteStore>,
    browsers: Vec<Mutex<Browser>>,
    /// Held while a browser signs in, so the new session in the store is known to be its own.
    signing_in: Mutex<()>,
    requests: AtomicU64,
    unexpected: std::sync::Mutex<Vec<String>>,
}

fn form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

fn set_cookie(response: &reqwest::Response) -> Option<String> {
    let header = response.headers().get("set-cookie")?.to_str().ok()?;
    let pair = header.split(';').next()?.to_owned();
    (!pair.ends_with('=')).then_some(pair)
}

fn csrf_of(page: &str) -> Result<String, Error> {
    let marker = "name=csrf value=\"";
    let at = page.find(marker).ok_or("no CSRF token on the page")? + marker.len();
    Ok(page[at..].split('"').next().unwrap_or_default().to_owned())
}

impl Soak {
    fn note(&self, what: String) {
        self.unexpected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(what);
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        browser: &Browser,
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-forwarded-for", &browser.address);
        if let Some(cookie) = &browser.cookie {
            request = request.header("cookie", cookie);
        }
        request
    }

    /// The app's home page: its CSRF token, keeping the (anonymous or signed-in) cookie.
    async fn home(&self, browser: &mut Browser) -> Result<String, Error> {
        let page = self
            .request(reqwest::Method::GET, "/", browser)
            .send()
            .await?;
        if let Some(cookie) = set_cookie(&page) {
            browser.cookie = Some(cookie);
        }
        csrf_of(&page.text().await?)
    }

    async fn sign_in(&self, browser: &mut Browser, account: &Account) -> Result<(), Error> {
        let _one_at_a_time = self.signing_in.lock().await;
        let before: Vec<_> = self.store.list_all().await?;
        let csrf = self.home(browser).await?;
        let login = self
            .request(reqwest::Method::POST, "/oauth/login", browser)
            .header("origin", &self.base)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("identifier", &account.handle), ("csrf", &csrf)]))
            .send()
            .await?;
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
        let path = format!("/oauth/callback?{}", redirect.query().unwrap_or_default());
        let done = self
            .request(reqwest::Method::GET, &path, browser)
            .send()
            .await?;
        if done.status() != 303 {
            return Err(format!("the callback answered {}", done.status()).into());
        }
        browser.cookie = Some(set_cookie(&done).ok_or("no session cookie after sign-in")?);
        let after = self.store.list_all().await?;
        let new = after
            .iter()
            .find(|s| !before.iter().any(|b| b.session_id == s.session_id))
            .ok_or("no new session in the store after sign-in")?;
        browser.session = Some((new.did.clone(), new.session_id.clone()));
        Ok(())
    }

    async fn sign_out(&self, browser: &mut Browser) -> Result<(), Error> {
        let csrf = self.home(browser).await?;
        let answer = self
            .request(reqwest::Method::POST, "/oauth/logout", browser)
            .header("origin", &self.base)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("csrf", &csrf)]))
            .send()
            .await?;
        if answer.status() != 303 {
            return Err(format!("sign-out answered {}", answer.status()).into());
        }
        browser.cookie = set_cookie(&answer);
        browser.session = None;
        Ok(())
    }

    /// One proxied call; anything but a 200 is unexpected.
    async fn call(&self, browser: &Browser, why: &str) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let answer = self
            .request(
                reqwest::Method::GET,
                "/xrpc/com.atproto.server.getSession",
                browser,
            )
            .send()
            .await;
        match answer {
            Ok(answer) if answer.status() == 200 => {}
            Ok(answer) => {
                let status = answer.status();
                let body = answer.text().await.unwrap_or_default();
                self.note(format!("{why}: {status} {body}"));
            }
            Err(error) => self.note(format!("{why}: {error}")),
        }
    }

    async fn sample(&self, server: u32, started: Instant) -> Result<Sample, Error> {
        // Readings are taken between sign-ins, so "live" and the rows agree.
        let _quiet = self.signing_in.lock().await;
        let mut live = 0;
        for browser in &self.browsers {
            if let Ok(browser) = browser.try_lock() {
                live += usize::from(browser.session.is_some());
            } else {
                live += 1; // busy in a call or an expiry: signed in
            }
        }
        let count = |table: &str| {
            let query = format!("SELECT count(*) FROM {table}");
            let pool = self.store.pool().clone();
            async move {
                sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(query))
                    .fetch_one(&pool)
                    .await
            }
        };
        let status = std::fs::read_to_string(format!("/proc/{server}/status"))?;
        let rss_kib = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse().ok())
            .ok_or("no VmRSS")?;
        let fds = std::fs::read_dir(format!("/proc/{server}/fd"))?.count();
        Ok(Sample {
            seconds: started.elapsed().as_secs_f64(),
            rss_kib,
            fds,
            sessions: count("oauth_sessions").await?,
            browser_sessions: count("oauth_browser_sessions").await?,
            states: count("oauth_states").await?,
            live,
            requests: self.requests.load(Ordering::Relaxed),
            errors: u64::try_from(
                self.unexpected
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .len(),
            )
            .unwrap_or(u64::MAX),
        })
    }
}

fn spawn_serve(atoauth: &Path, data: &Path) -> Result<(Child, String, String), Error> {
    let pds = pds();
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut child = Command::new(atoauth)
        .args(["--insecure-dev", "--plc-url", pds.plc_url().as_str()])
        .args(["--handle-resolver", pds.pds_url().as_str()])
        .arg("--data-dir")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--trusted-proxy", "127.0.0.1/32"])
        .args(["--metrics-listen", &metrics.to_string()])
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    let base = read_line_with(&mut child, |line| {
        line.split("open ")
            .nth(1)
            .filter(|_| line.contains("listening on"))
            .map(|url| url.trim().trim_end_matches('/').to_owned())
    })?;
    Ok((child, base, format!("http://{metrics}/metrics")))
}

async fn refreshes(http: &reqwest::Client, metrics: &str) -> u64 {
    let Ok(answer) = http.get(metrics).send().await else {
        return 0;
    };
    let text = answer.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("atoauth_refreshes_total"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum::<f64>()
        .round() as u64
}

/// Runs the soak and returns what it saw; the server is stopped and its data removed at the end.
///
/// # Errors
/// When the server does not start or a browser cannot sign in at the outset.
pub async fn run(config: &SoakConfig) -> Result<SoakReport, Error> {
    let data = tempfile_dir()?;
    let (mut child, base, metrics) = spawn_serve(&config.atoauth, &data)?;
    let outcome = drive(config, &child, base, &metrics, &data).await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&data);
    outcome
}

fn tempfile_dir() -> Result<PathBuf, Error> {
    let dir = std::env::temp_dir().join(format!(
        "atoauth-soak-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn drive(
    config: &SoakConfig,
    child: &Child,
    base: String,
    metrics: &str,
    data: &Path,
) -> Result<SoakReport, Error> {
    let soak = Arc::new(Soak {
        base,
        // Keep-alive connections, as browsers have (the testkit's shared client has none).
        http: reqwest::Client::builder()
            .tls_backend_preconfigured(atoauth::http::tls_client_config()?)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()?,
        store: Arc::new(SqliteStore::open(&data.join("atoauth.db")).await?),
        browsers: (0..config.browsers)
            .map(|i| {
                Mutex::new(Browser {
                    address: format!("10.{}.{}.{}", i / 65_536 % 256, i / 256 % 256, i % 256),
                    cookie: None,
                    session: None,
                })
            })
            .collect(),
        signing_in: Mutex::new(()),
        requests: AtomicU64::new(0),
        unexpected: std::sync::Mutex::default(),
    });
    for (i, browser) in soak.browsers.iter().enumerate() {
        let mut browser = browser.lock().await;
        soak.sign_in(&mut browser, accounts_for(i)).await?;
    }

    let length = Duration::from_secs_f64(config.minutes * 60.0);
    let started = Instant::now();
    let deadline = started + length;
    let mut tasks = tokio::task::JoinSet::new();

    // Steady traffic, spread over the browsers.
    let pause = Duration::from_secs_f64(f64::from(TRAFFIC_WORKERS) / config.requests_per_second);
    for worker in 0..TRAFFIC_WORKERS {
        let soak = Arc::clone(&soak);
        tasks.spawn(async move {
            let mut next = worker as usize;
            while Instant::now() < deadline {
                let index = next % soak.browsers.len();
                next += TRAFFIC_WORKERS as usize;
                if let Ok(browser) = soak.browsers[index].try_lock()
                    && browser.session.is_some()
                {
                    soak.call(&browser, "a proxied call").await;
                }
                tokio::time::sleep(pause).await;
            }
            ("traffic", 0)
        });
    }
    // Forced expiries: the next call must refresh, transparently.
    let soak_for_expiries = Arc::clone(&soak);
    tasks.spawn(async move {
        let soak = soak_for_expiries;
        let mut done = 0;
        for n in 1..=EXPIRIES {
            tokio::time::sleep_until((started + length * n / (EXPIRIES + 1)).into()).await;
            let index = (n as usize * 7) % soak.browsers.len();
            let browser = soak.browsers[index].lock().await;
            if let Some((did, id)) = &browser.session {
                expire_session(soak.store.as_ref(), did, id).await;
                soak.call(&browser, "the call after a forced expiry").await;
                done += 1;
            }
        }
        ("expiries", done)
    });
    // Sign-outs and sign-ins.
    let soak_for_cycles = Arc::clone(&soak);
    tasks.spawn(async move {
        let soak = soak_for_cycles;
        let mut done = 0;
        for n in 1..=CYCLES {
            tokio::time::sleep_until((started + length * n / (CYCLES + 1)).into()).await;
            let index = (n as usize * 13 + 3) % soak.browsers.len();
            let mut browser = soak.browsers[index].lock().await;
            let account = accounts_for(index);
            let outcome = async {
                soak.sign_out(&mut browser).await?;
                soak.sign_in(&mut browser, account).await
            }
            .await;
            match outcome {
                Ok(()) => done += 1,
                Err(error) => soak.note(format!("a sign-out/sign-in cycle: {error}")),
            }
        }
        ("cycles", done)
    });

    let mut report = SoakReport::default();
    for n in 0..=READINGS {
        tokio::time::sleep_until((started + length * n / READINGS).into()).await;
        report.samples.push(soak.sample(child.id(), started).await?);
    }
    while let Some(finished) = tasks.join_next().await {
        match finished? {
            ("expiries", count) => report.expiries = count,
            ("cycles", count) => report.cycles = count,
            _ => {}
        }
    }
    report.requests = soak.requests.load(Ordering::Relaxed);
    report.refreshes = refreshes(&soak.http, metrics).await;
    report.unexpected = soak
        .unexpected
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    Ok(report)
}

fn accounts_for(index: usize) -> &'static Account {
    let pds = pds();
    [pds.alice(), pds.bob(), pds.carol()][index % 3]
}
