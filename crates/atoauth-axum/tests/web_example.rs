//! The web examples as a user runs them, against the official PDS.
//!
//! `examples/web.rs`: a visitor is sent to the sign-in page, signs in, posts a record that the
//! PDS then serves, is refused a cross-site post, and signs out. This also covers the crate's
//! routes end to end: the sign-in page's token, `POST /oauth/login`, the callback, `SignedIn`,
//! `CsrfForm`, `Error`, sign-out.
//!
//! `examples/confidential.rs`: a published `private_key_jwt` client behind a TLS proxy (J1–J3),
//! its metadata document served by the app and published on the harness's HTTPS host.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use atoauth_testkit::{Consent, http_client, pds, reqwest};

struct Example(Child);

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `examples/<name>` in `dir` with `env` on a free port, once it says it listens.
fn spawn_example(name: &str, dir: &std::path::Path, env: &[(&str, &str)]) -> (Example, u16) {
    let binary = atoauth_testkit::example_binary(name);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pds = pds();
    let mut child = Command::new(binary)
        .current_dir(dir)
        .env("PORT", port.to_string())
        .env("PLC_URL", pds.plc_url().as_str())
        .env("HANDLE_RESOLVER", pds.pds_url().as_str())
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = BufReader::new(child.stdout.take().unwrap()).lines().next();
    let example = Example(child);
    assert!(ready.unwrap().unwrap().starts_with("Listening on"));
    // It says so just before it binds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{name} never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (example, port)
}

/// A browser without JavaScript: keeps the cookie, follows nothing by itself. `host` is the
/// Host header a reverse proxy would pass on (none: the address itself).
struct Visitor {
    http: reqwest::Client,
    base: String,
    host: Option<String>,
    cookie: Option<String>,
    set_cookie: Option<String>,
}

impl Visitor {
    fn new(port: u16) -> Self {
        Self {
            http: http_client(),
            base: format!("http://127.0.0.1:{port}"),
            host: None,
            cookie: None,
            set_cookie: None,
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> (u16, Option<String>, String) {
        let request = match &self.cookie {
            Some(cookie) => request.header("cookie", cookie),
            None => request,
        };
        let request = match &self.host {
            Some(host) => request.header("host", host),
            None => request,
        };
        let response = request.send().await.unwrap();
        if let Some(set) = response.headers().get("set-cookie") {
            let set = set.to_str().unwrap().to_owned();
            let pair = set.split(';').next().unwrap().to_owned();
            self.set_cookie = Some(set);
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, location, response.text().await.unwrap())
    }

    async fn get(&mut self, path: &str) -> (u16, Option<String>, String) {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post(
        &mut self,
        path: &str,
        origin: &str,
        form: &[(&str, &str)],
    ) -> (u16, Option<String>, String) {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }
}

fn csrf(page: &str) -> String {
    let marker = "name=csrf value=\"";
    let start = page.find(marker).expect("a form with a CSRF token") + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_web_example_signs_in_posts_and_signs_out() {
    let pds = pds();
    let alice = pds.alice();
    let dir = tempfile::tempdir().unwrap();
    let (_example, port) = spawn_example("web", dir.path(), &[]);
    let mut visitor = Visitor::new(port);
    let base = visitor.base.clone();

    // Not signed in: the protected home page sends the visitor to the sign-in page.
    let (status, location, _) = visitor.get("/").await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
    let (status, _, page) = visitor.get("/login").await;
    assert_eq!(status, 200);
    assert!(
        visitor.cookie.is_some(),
        "the sign-in page sets the browser's cookie"
    );
    let token = csrf(&page);
    let (status, authorize, body) = visitor
        .post(
            "/oauth/login",
            &base,
            &[("csrf", &token), ("identifier", &alice.handle)],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let callback = pds
        .authorize(&authorize.unwrap(), alice, Consent::Accept)
        .await
        .unwrap();
    let (status, location, _) = visitor
        .get(&format!("/oauth/callback?{}", callback.query().unwrap()))
        .await;
    assert_eq!((status, location.as_deref()), (303, Some("/")));
    let (status, _, home) = visitor.get("/").await;
    assert_eq!(status, 200);
    assert!(home.contains(&format!("Hello, {}", alice.handle)), "{home}");

    // A post from our page reaches the PDS; one from another site is refused.
    let token = csrf(&home);
    let text = format!("hello from the web example {port}");
    let (status, _, posted) = visitor
        .post("/post", &base, &[("csrf", &token), ("text", &text)])
        .await;
    assert_eq!(status, 200, "{posted}");
    let uri = posted
        .split("<code id=uri>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    let rkey = uri.rsplit('/').next().unwrap();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("repo", alice.did.as_str()),
            ("collection", "app.bsky.feed.post"),
            ("rkey", rkey),
        ])
        .finish();
    let record: serde_json::Value = http_client()
        .get(format!(
            "{}xrpc/com.atproto.repo.getRecord?{query}",
            pds.pds_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(record["value"]["text"], text.as_str());
    let (status, _, _) = visitor
        .post(
            "/post",
            "https://evil.example",
            &[("csrf", &token), ("text", "forged")],
        )
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = visitor
        .post("/post", &base, &[("csrf", "wrong"), ("text", "forged")])
        .await;
    assert_eq!(status, 403);

    // Signing out: the home page sends the visitor to sign in again.
    let (status, _, _) = visitor
        .post("/oauth/logout", &base, &[("csrf", &token)])
        .await;
    assert_eq!(status, 303);
    let (status, location, _) = visitor.get("/").await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
}

#[tokio::test]
async fn the_confidential_example_signs_in_with_private_key_jwt_and_signs_out() {
    use atoauth::protocol::crypto::{Es256Key, OsRandomness};

    let pds = pds();
    let bob = pds.bob();
    let dir = tempfile::tempdir().unwrap();
    // What `atoauth keygen --out keys.json` writes: a private JWKS.
    let key = Es256Key::generate(&OsRandomness).unwrap().with_kid("k1");
    let keys = atoauth::Keyset::new([key]).unwrap();
    let jwks = serde_json::to_string(&keys.to_private_jwks()).unwrap();
    std::fs::write(dir.path().join("keys.json"), jwks).unwrap();

    // The app is public at the harness's HTTPS host, the only one the PDS fetches clients from;
    // a reverse proxy would pass that Host on to the app's port.
    let public = pds.ready().client_host_url.clone();
    let origin = public.origin().ascii_serialization();
    let (example, port) = spawn_example(
        "confidential",
        dir.path(),
        &[("PUBLIC_URL", public.as_str())],
    );
    let mut visitor = Visitor::new(port);
    visitor.host = Some(public.authority().to_owned());

    // It serves its metadata document (public keys only); the harness publishes the same.
    let (status, _, body) = visitor.get("/oauth-client-metadata.json").await;
    assert_eq!(status, 200, "{body}");
    let document: serde_json::Value = serde_json::from_str(&body).unwrap();
    let client_id = public.join("oauth-client-metadata.json").unwrap();
    assert_eq!(document["client_id"], client_id.as_str());
    assert_eq!(document["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(document["jwks"]["keys"][0]["kid"], "k1");
    assert!(document["jwks"]["keys"][0].get("d").is_none());
    pds.register_client_metadata("oauth-client-metadata.json", &document)
        .await;

    let (status, _, page) = visitor.get("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("Sign in"), "{page}");
    let cookie = visitor.set_cookie.clone().unwrap();
    assert!(
        cookie.contains("; Secure"),
        "an https app's cookie: {cookie}"
    );
    let token = csrf(&page);
    let (status, authorize, body) = visitor
        .post(
            "/oauth/login",
            &origin,
            &[("csrf", &token), ("identifier", &bob.handle)],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let callback = pds
        .authorize(&authorize.unwrap(), bob, Consent::Accept)
        .await
        .unwrap();
    let redirect_uri = public.join("oauth/callback").unwrap();
    assert!(
        callback.as_str().starts_with(redirect_uri.as_str()),
        "{callback}"
    );
    let (status, location, body) = visitor
        .get(&format!("/oauth/callback?{}", callback.query().unwrap()))
        .await;
    assert_eq!((status, location.as_deref()), (303, Some("/")), "{body}");
    let (_, _, home) = visitor.get("/").await;
    assert!(home.contains(&format!("Hello, {}", bob.did)), "{home}");
    assert!(home.contains("transition:generic"), "{home}");

    // A restart keeps the session: it is in the app's SQLite file, the cookie key on disk.
    drop(example);
    let (_example, port) = spawn_example(
        "confidential",
        dir.path(),
        &[("PUBLIC_URL", public.as_str())],
    );
    visitor.base = format!("http://127.0.0.1:{port}");
    let (_, _, home) = visitor.get("/").await;
    assert!(home.contains(&format!("Hello, {}", bob.did)), "{home}");

    let token = csrf(&home);
    let (status, _, _) = visitor
        .post("/oauth/logout", &origin, &[("csrf", &token)])
        .await;
    assert_eq!(status, 303);
    let (_, _, page) = visitor.get("/").await;
    assert!(page.contains("Sign in"), "{page}");
}

/// `examples/client_assertion.rs`: the backend of a single-page app hosted elsewhere signs an
/// assertion for a browser's DPoP key, and the official PDS accepts it in a pushed
/// authorization request made with that key, as the app in the browser would make it.
#[tokio::test]
async fn the_client_assertion_example_signs_assertions_the_pds_accepts() {
    use atoauth::protocol::crypto::{Es256Key, OsRandomness};
    use atoauth::protocol::dpop::DpopKey;

    let pds = pds();
    let dir = tempfile::tempdir().unwrap();
    let keys =
        atoauth::Keyset::new([Es256Key::generate(&OsRandomness).unwrap().with_kid("cab")]).unwrap();
    std::fs::write(
        dir.path().join("keys.json"),
        serde_json::to_string(&keys.to_private_jwks()).unwrap(),
    )
    .unwrap();
    let app = "https://spa.atoauth-interop.internal";
    let metadata = serde_json::json!({
        "client_id": pds.ready().client_host_url.join("cab-example/client-metadata.json").unwrap(),
        "application_type": "web",
        "redirect_uris": [format!("{app}/")],
        "scope": "atproto",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "ES256",
        "dpop_bound_access_tokens": true,
        "jwks": keys.public_jwks(),
    });
    let client_id = pds
        .register_client_metadata("cab-example/client-metadata.json", &metadata)
        .await;
    // Behind a TLS proxy at this name; proofs name it in `htu`.
    let public = "https://api.atoauth-interop.internal";
    let (_example, port) = spawn_example(
        "client_assertion",
        dir.path(),
        &[
            ("CLIENT_ID", client_id.as_str()),
            ("PUBLIC_URL", public),
            ("APP_ORIGIN", app),
            ("INSECURE_LOOPBACK_PDS", "1"),
        ],
    );

    let http = http_client();
    let browser_key = DpopKey::generate(&OsRandomness).unwrap();
    let backend = Backend {
        http: &http,
        address: format!("http://127.0.0.1:{port}/oauth/client-assertion"),
        endpoint: format!("{public}/oauth/client-assertion"),
        origin: app,
        key: &browser_key,
    };
    let proof = |url: &str, nonce: Option<&str>| dpop_proof(&browser_key, url, nonce);

    // PAR as atoauth-browser sends it, with the PDS's DPoP nonce dance; a fresh assertion for
    // each attempt (assertions are single-use).
    let par = pds.pds_url().join("oauth/par").unwrap();
    let pkce = atoauth::protocol::pkce::Pkce::generate(&OsRandomness).unwrap();
    let mut nonce: Option<String> = None;
    let mut answer = None;
    for _ in 0..2 {
        let form = [
            ("client_id", client_id.as_str()),
            ("response_type", "code"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
            ("state", "example-state"),
            ("redirect_uri", &format!("{app}/")),
            ("scope", "atproto"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            (
                "client_assertion",
                &backend.assertion(pds.issuer(), client_id.as_str()).await,
            ),
        ];
        let response = http
            .post(par.as_str())
            .header("dpop", proof(par.as_str(), nonce.as_deref()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap())
            .send()
            .await
            .unwrap();
        nonce = response
            .headers()
            .get("dpop-nonce")
            .map(|v| v.to_str().unwrap().to_owned());
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        if body["error"] == "use_dpop_nonce" {
            continue;
        }
        answer = Some((status, body));
        break;
    }
    let (status, body) = answer.expect("an answer after the nonce");
    assert_eq!(
        status, 201,
        "the PDS accepts the backend's assertion: {body}"
    );
    assert!(body["request_uri"].as_str().unwrap().starts_with("urn:"));
}

fn dpop_proof(key: &atoauth::protocol::dpop::DpopKey, url: &str, nonce: Option<&str>) -> String {
    use atoauth::protocol::crypto::{OsRandomness, SystemClock};
    let target = atoauth::protocol::dpop::ProofTarget {
        method: "POST",
        url: &url.parse().unwrap(),
        nonce,
        access_token: None,
    };
    key.proof(target, &SystemClock, &OsRandomness).unwrap()
}

/// A browser asking the example's client-assertion route, as atoauth-browser does.
struct Backend<'a> {
    http: &'a reqwest::Client,
    /// Where the test reaches it.
    address: String,
    /// Its public URL (the proofs' `htu`).
    endpoint: String,
    origin: &'a str,
    key: &'a atoauth::protocol::dpop::DpopKey,
}

impl Backend<'_> {
    /// One assertion for `aud`, learning the backend's nonce on the way (a 401 with
    /// `DPoP-Nonce`).
    async fn assertion(&self, aud: &str, client_id: &str) -> String {
        let ask = |nonce: Option<&str>| {
            self.http
                .post(&self.address)
                .header("origin", self.origin)
                .header("dpop", dpop_proof(self.key, &self.endpoint, nonce))
                .json(&serde_json::json!({ "aud": aud }))
                .send()
        };
        let mut answer = ask(None).await.unwrap();
        if answer.status() == 401 {
            let nonce = answer.headers()["dpop-nonce"].to_str().unwrap().to_owned();
            answer = ask(Some(&nonce)).await.unwrap();
        }
        assert_eq!(answer.status(), 200);
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["client_id"], client_id);
        body["client_assertion"].as_str().unwrap().to_owned()
    }
}
