//! The official PDS as a test peer: one node process per test binary.
//!
//! `cargo test` runs test binaries one after another; each starts its own harness on first use
//! (about 3–5 s) and every test in the binary shares it. The harness exits when its standard
//! input closes, so it goes away with the test process however that ends: normally, by a panic,
//! or killed.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;

/// What the harness reports once it is ready (its stdout "ready" line).
#[derive(Clone, Debug, Deserialize)]
pub struct Ready {
    /// The harness process id.
    pub pid: u32,
    /// The node version running it.
    pub node: String,
    /// The `@atproto/pds` version.
    pub pds_version: String,
    /// Milliseconds from process start to ready, module loading excluded.
    pub startup_ms: u64,
    /// The PDS, e.g. `http://localhost:39255`.
    pub pds_url: Url,
    /// The OAuth issuer (the PDS's origin).
    pub issuer: String,
    /// The did:plc directory.
    pub plc_url: Url,
    /// Handle suffixes the PDS serves (`.test`).
    pub handle_domains: Vec<String>,
    /// The test accounts.
    pub accounts: Vec<Account>,
    /// The control server.
    pub control_url: Url,
    /// The HTTPS host that serves confidential clients' metadata to the PDS.
    pub client_host_url: Url,
    /// The harness's throwaway data directory.
    pub data_dir: PathBuf,
}

/// A test account on the PDS.
#[derive(Clone, Debug, Deserialize)]
pub struct Account {
    /// Its handle, e.g. `alice.test`.
    pub handle: String,
    /// Its DID (new at every harness start).
    pub did: String,
    /// Its password.
    pub password: String,
    /// Its email address.
    pub email: String,
}

/// What the user does on the authorization page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Consent {
    /// Sign in and approve everything requested.
    Accept,
    /// Sign in and approve only this subset of the requested scope.
    AcceptScope(String),
    /// Deny the request.
    Reject,
}

/// The harness could not complete the user step.
#[derive(Debug)]
pub struct AuthorizeError {
    /// The HTTP status of the control server's answer.
    pub status: u16,
    /// Its message (which step failed and why).
    pub message: String,
}

impl std::fmt::Display for AuthorizeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "authorize failed ({}): {}", self.status, self.message)
    }
}

impl std::error::Error for AuthorizeError {}

/// The running harness.
#[derive(Debug)]
pub struct Pds {
    ready: Ready,
    http: reqwest::Client,
    log: PathBuf,
    // Held for the life of the test process: when it is closed, the harness stops.
    _stdin: ChildStdin,
    _child: Child,
}

static PDS: OnceLock<Pds> = OnceLock::new();

/// A plain HTTP client for tests: no redirects followed, no cookies kept, no proxies, no
/// pooled connections (each `#[tokio::test]` has its own runtime, and a pooled connection dies
/// with the runtime that opened it).
///
/// # Panics
/// When the TLS configuration cannot be built.
pub fn http_client() -> reqwest::Client {
    let tls = atoauth::http::tls_client_config().expect("a TLS configuration");
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("a reqwest client")
}

/// The harness of this test binary, started on first call.
///
/// # Panics
/// When the harness cannot be installed or started; the message names its log file.
pub fn pds() -> &'static Pds {
    PDS.get_or_init(start)
}

impl Pds {
    /// Everything the ready line reported.
    pub fn ready(&self) -> &Ready {
        &self.ready
    }

    /// The PDS URL, e.g. `http://localhost:39255`.
    pub fn pds_url(&self) -> &Url {
        &self.ready.pds_url
    }

    /// The OAuth issuer: the PDS origin, exactly as its metadata states it.
    pub fn issuer(&self) -> &str {
        &self.ready.issuer
    }

    /// The did:plc directory URL.
    pub fn plc_url(&self) -> &Url {
        &self.ready.plc_url
    }

    /// The account with this handle.
    ///
    /// # Panics
    /// When there is no such account.
    pub fn account(&self, handle: &str) -> &Account {
        self.ready
            .accounts
            .iter()
            .find(|a| a.handle == handle)
            .unwrap_or_else(|| panic!("the harness has no account {handle}"))
    }

    /// `alice.test`.
    pub fn alice(&self) -> &Account {
        self.account("alice.test")
    }

    /// `bob.test`.
    pub fn bob(&self) -> &Account {
        self.account("bob.test")
    }

    /// `carol.test`: a third account, for limits of two.
    pub fn carol(&self) -> &Account {
        self.account("carol.test")
    }

    /// The file the harness's stderr goes to.
    pub fn log_file(&self) -> &Path {
        &self.log
    }

    /// Publishes a JSON document (client metadata, JWKS) on the harness's HTTPS host, where only
    /// the PDS can fetch it, and returns its URL. Use a new path per test: the PDS caches client
    /// metadata for 10 minutes.
    ///
    /// # Panics
    /// When the control server refuses the document.
    pub async fn register_client_metadata(&self, path: &str, document: &serde_json::Value) -> Url {
        let path = path.trim_start_matches('/');
        let url = self
            .ready
            .control_url
            .join(&format!("clients/{path}"))
            .expect("a valid document path");
        let response = self
            .http
            .put(url)
            .json(document)
            .send()
            .await
            .expect("the control server answers");
        let status = response.status();
        let body: serde_json::Value = response.json().await.expect("a JSON answer");
        assert_eq!(status, 201, "register {path}: {body}");
        body["url"]
            .as_str()
            .and_then(|u| Url::parse(u).ok())
            .expect("the answer names the document URL")
    }

    /// Plays the user on the PDS's authorization page for `authorize_url` (what a client sends
    /// the browser to after PAR) and returns the URL the browser would be redirected to, with
    /// `code`, `state` and `iss` (or `error=access_denied`). The redirect is not followed.
    ///
    /// # Errors
    /// When sign-in or consent fails (wrong password, expired request, …).
    pub async fn authorize(
        &self,
        authorize_url: &str,
        account: &Account,
        consent: Consent,
    ) -> Result<Url, AuthorizeError> {
        let mut body = serde_json::json!({
            "authorize_url": authorize_url,
            "username": account.handle,
            "password": account.password,
            "action": if consent == Consent::Reject { "reject" } else { "accept" },
        });
        if let Consent::AcceptScope(scope) = &consent {
            body["scope"] = scope.clone().into();
        }
        let url = self
            .ready
            .control_url
            .join("authorize")
            .expect("a valid control URL");
        let failed = |status: u16, message: String| AuthorizeError { status, message };
        let response = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|e| failed(0, e.to_string()))?;
        let status = response.status().as_u16();
        let answer: serde_json::Value = response
            .json()
            .await
            .map_err(|e| failed(status, e.to_string()))?;
        if status != 200 {
            return Err(failed(status, answer["error"].to_string()));
        }
        answer["redirect_url"]
            .as_str()
            .and_then(|u| Url::parse(u).ok())
            .ok_or_else(|| failed(status, format!("no redirect_url in {answer}")))
    }

    /// An identity resolver for the harness: its PLC directory, handles through the PDS's
    /// `resolveHandle`, loopback http allowed.
    ///
    /// # Panics
    /// Never in practice (the configuration is fixed).
    pub fn identity_resolver(&self) -> atoauth::identity::IdentityResolver {
        atoauth::identity::IdentityResolver::builder()
            .target_policy(atoauth::http::TargetPolicy::InsecureAllowLoopbackHttp)
            .plc_url(self.plc_url().clone())
            .handle_resolution(atoauth::identity::HandleResolution::Service(
                self.pds_url().clone(),
            ))
            .build()
            .expect("a resolver for the harness")
    }

    /// Sets the DNS TXT records the PDS sees for `name` (the PDS resolves nothing else): for a
    /// permission set, `_lexicon.<authority>` → `did=<repository>`.
    ///
    /// # Panics
    /// When the control server refuses.
    pub async fn set_txt(&self, name: &str, values: &[&str]) {
        let url = self
            .ready
            .control_url
            .join(&format!("dns/txt/{name}"))
            .expect("a valid DNS name");
        let response = self
            .http
            .put(url)
            .json(&values)
            .send()
            .await
            .expect("the control server answers");
        assert!(
            response.status().is_success(),
            "set_txt {name}: {}",
            response.status()
        );
    }

    /// Makes every lexicon the PDS has stored stale, as if its 5-minute refresh time had passed:
    /// the next expansion of a permission set (at a refresh) fetches it again.
    ///
    /// # Panics
    /// When the control server refuses.
    pub async fn age_lexicons(&self) -> u64 {
        self.control_post("lexicons/age", &serde_json::json!({}))
            .await["aged"]
            .as_u64()
            .expect("a count")
    }

    /// Moves the creation time of `did`'s OAuth sessions with `client_id` `days` back, as if
    /// they had been signed in that long ago (the last refresh stays): the PDS's session
    /// lifetime, 2 weeks for a public client and 2 years for a confidential one, then decides
    /// the next refresh. Returns how many sessions moved.
    ///
    /// # Panics
    /// When the control server refuses.
    pub async fn age_sessions(&self, did: &str, client_id: &str, days: u32) -> u64 {
        let body = serde_json::json!({ "did": did, "client_id": client_id, "days": days });
        self.control_post("sessions/age", &body).await["aged"]
            .as_u64()
            .expect("a count")
    }

    /// POSTs `body` to the control server's `path` and returns its JSON answer.
    async fn control_post(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let url = self
            .ready
            .control_url
            .join(path)
            .expect("a valid control URL");
        let response = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .expect("the control server answers");
        let status = response.status();
        assert!(status.is_success(), "control {path}: {status}");
        response.json().await.expect("JSON")
    }

    /// How the PDS's token endpoint answered requests whose DPoP proof carried the public key
    /// with this `x` coordinate, counted inside the harness process: status → count (a grant
    /// is a 200). One client's key, so other clients signing in meanwhile do not count.
    ///
    /// # Panics
    /// When the control server refuses.
    pub async fn token_answers(&self, dpop_key_x: &str) -> std::collections::BTreeMap<u16, u64> {
        let url = self
            .ready
            .control_url
            .join(&format!("token-answers/{dpop_key_x}"))
            .expect("a valid control URL");
        let answer: std::collections::BTreeMap<String, u64> = self
            .http
            .get(url)
            .send()
            .await
            .expect("the control server answers")
            .json()
            .await
            .expect("JSON");
        answer
            .into_iter()
            .filter_map(|(status, count)| Some((status.parse().ok()?, count)))
            .collect()
    }

    /// Writes a lexicon document into `account`'s repository (`com.atproto.lexicon.schema`,
    /// keyed by its `id`), as its author would publish it; returns the record's CID.
    ///
    /// # Panics
    /// When the PDS refuses.
    pub async fn publish_lexicon(&self, account: &Account, document: &serde_json::Value) -> String {
        let session: serde_json::Value = self
            .http
            .post(
                self.pds_url()
                    .join("xrpc/com.atproto.server.createSession")
                    .expect("URL"),
            )
            .json(&serde_json::json!({"identifier": account.handle, "password": account.password}))
            .send()
            .await
            .expect("createSession")
            .json()
            .await
            .expect("JSON");
        let token = session["accessJwt"].as_str().expect("an access token");
        let mut record = document.clone();
        record["$type"] = "com.atproto.lexicon.schema".into();
        let response = self
            .http
            .post(
                self.pds_url()
                    .join("xrpc/com.atproto.repo.putRecord")
                    .expect("URL"),
            )
            .bearer_auth(token)
            .json(&serde_json::json!({
                "repo": account.did,
                "collection": "com.atproto.lexicon.schema",
                "rkey": document["id"],
                "record": record,
            }))
            .send()
            .await
            .expect("putRecord");
        let status = response.status();
        let answer: serde_json::Value = response.json().await.expect("JSON");
        assert!(status.is_success(), "putRecord: {status} {answer}");
        answer["cid"].as_str().expect("a CID").to_owned()
    }

    /// The PEM file of the throw-away CA that signed the client host's certificate: what a
    /// client trusts to fetch from the client host itself (the PDS already does).
    pub fn client_host_ca(&self) -> PathBuf {
        self.ready.data_dir.join("client-host-ca.crt")
    }

    /// A certificate for `host` from the harness's CA, written into `dir`: an https test app on
    /// an ordinary name (a confidential web client may not redirect to loopback or `.test`).
    #[must_use]
    pub fn certificate_for(
        &self,
        host: &str,
        dir: &std::path::Path,
    ) -> crate::certs::IssuedCertificate {
        crate::certs::issue(
            host,
            &self.client_host_ca(),
            &self.ready.data_dir.join("client-host-ca.key"),
            dir,
        )
    }

    /// The `http://localhost` development client asking for `scope`, resolving through the
    /// harness, with its sessions in `store`.
    ///
    /// # Panics
    /// When `scope` is not a valid scope for the development client.
    pub fn loopback_client(
        &self,
        scope: &str,
        store: std::sync::Arc<dyn atoauth::Store>,
    ) -> atoauth::OAuthClient {
        self.loopback_builder(scope, store)
            .build()
            .expect("a development client")
    }

    /// The builder of [`loopback_client`](Self::loopback_client), for more options.
    ///
    /// # Panics
    /// When `scope` is not a valid scope for the development client.
    pub fn loopback_builder(
        &self,
        scope: &str,
        store: std::sync::Arc<dyn atoauth::Store>,
    ) -> atoauth::OAuthClientBuilder {
        atoauth::OAuthClient::builder()
            .loopback(atoauth::LoopbackClient::with_scope(scope).expect("a loopback scope"))
            .insecure_local_pds(self.plc_url().clone(), self.pds_url().clone())
            .store(store)
    }

    /// A development client asking for `scope` over `http`, with a fresh in-memory store, and
    /// `account` signed in with it: the client, the store and the session.
    ///
    /// # Panics
    /// When any step fails.
    pub async fn signed_in(
        &self,
        scope: &str,
        account: &Account,
        http: &crate::RecordingHttp,
    ) -> (
        atoauth::OAuthClient,
        std::sync::Arc<dyn atoauth::Store>,
        atoauth::OAuthSession,
    ) {
        let store: std::sync::Arc<dyn atoauth::Store> =
            std::sync::Arc::new(atoauth::MemoryStore::default());
        let client = self
            .loopback_builder(scope, std::sync::Arc::clone(&store))
            .http_client(std::sync::Arc::new(http.clone()))
            .build()
            .expect("a development client");
        let session = self.sign_in(&client, account).await;
        (client, store, session)
    }

    /// The whole sign-in of `account` with `client`: start, consent to everything, complete.
    ///
    /// # Panics
    /// When any step fails.
    pub async fn sign_in(
        &self,
        client: &atoauth::OAuthClient,
        account: &Account,
    ) -> atoauth::OAuthSession {
        let url = client
            .start_authorization(
                &account.handle,
                atoauth::client::AuthorizeOptions::default(),
            )
            .await
            .expect("PAR");
        let redirect = self
            .authorize(url.as_str(), account, Consent::Accept)
            .await
            .expect("consent");
        client
            .complete_authorization(atoauth::client::CallbackParams::from_url(&redirect))
            .await
            .expect("sign-in")
            .session
    }

    /// The record at `uri` (`at://<did>/<collection>/<rkey>`), read back from the PDS with
    /// `com.atproto.repo.getRecord`: the status and the body.
    ///
    /// # Panics
    /// When `uri` is not an at-uri of a record, or the request fails.
    pub async fn get_record(&self, uri: &str) -> (u16, String) {
        let parts: Vec<&str> = uri
            .strip_prefix("at://")
            .unwrap_or_else(|| panic!("not an at-uri: {uri}"))
            .split('/')
            .collect();
        let [repo, collection, rkey] = parts[..] else {
            panic!("not a record's at-uri: {uri}");
        };
        self.browser_get(&format!(
            "{}xrpc/com.atproto.repo.getRecord?repo={repo}&collection={collection}&rkey={rkey}",
            self.pds_url()
        ))
        .await
    }

    /// A plain GET, as a browser following a redirect would send it: the status and the body.
    ///
    /// # Panics
    /// When the request cannot be sent or its body read.
    pub async fn browser_get(&self, url: &str) -> (u16, String) {
        let response = self.http.get(url).send().await.expect("the GET is sent");
        let status = response.status().as_u16();
        (status, response.text().await.expect("a text body"))
    }

    /// The harness process's resident memory in bytes, read from `/proc`.
    pub fn rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.ready.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
}

/// `interop/pds` in this repository, or `$ATOAUTH_INTEROP_PDS_DIR`.
pub fn interop_dir() -> PathBuf {
    std::env::var_os("ATOAUTH_INTEROP_PDS_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop/pds"),
        PathBuf::from,
    )
}

/// Installs `interop/pds` (once; later calls return at once) and returns its directory.
///
/// # Panics
/// When the installation fails.
pub fn install_interop() -> PathBuf {
    let dir = interop_dir();
    let install = Command::new("bash")
        .arg(dir.join("setup.sh"))
        .stdin(Stdio::null())
        .status()
        .expect("bash runs interop/pds/setup.sh");
    assert!(install.success(), "interop/pds/setup.sh failed: {install}");
    dir
}

fn start() -> Pds {
    let dir = install_interop();

    let log = log_path();
    let log_file = std::fs::File::create(&log).expect("the harness log file can be created");
    let mut child = Command::new(dir.join("node_modules/.bin/node"))
        .arg("start.mjs")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .expect("node 22 from interop/pds starts");
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");

    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let outcome = reader.read_line(&mut line).map(|_| line);
        let _ = sender.send(outcome);
        // Keep draining so the harness never blocks on a full pipe.
        let _ = std::io::copy(&mut reader.take(u64::MAX), &mut std::io::sink());
    });
    let started = Instant::now();
    let line = match receiver.recv_timeout(Duration::from_secs(120)) {
        Ok(Ok(line)) if !line.trim().is_empty() => line,
        outcome => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "interop/pds did not become ready ({outcome:?}); its log:\n{}",
                tail(&log)
            );
        }
    };
    let ready: Ready = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("unexpected ready line ({e}): {line}"));
    eprintln!(
        "interop/pds: PDS {} ready at {} in {} ms (pid {}, log {})",
        ready.pds_version,
        ready.pds_url,
        started.elapsed().as_millis(),
        ready.pid,
        log.display()
    );
    let http = http_client();
    Pds {
        ready,
        http,
        log,
        _stdin: stdin,
        _child: child,
    }
}

fn log_path() -> PathBuf {
    // <target>/<profile>/deps/<test binary> → <target>/<profile>/interop-pds/<binary>.log
    let exe = std::env::current_exe().unwrap_or_default();
    let name = exe
        .file_name()
        .map_or_else(|| "test".into(), |n| n.to_string_lossy().into_owned());
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .map_or_else(std::env::temp_dir, |p| p.join("interop-pds"));
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!("{name}.log"))
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
