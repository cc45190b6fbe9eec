//! The client-assertion backend (issue #20) against the official PDS, in headless Chromium.
//!
//! The example app is served over TLS on an ordinary name, `spa.atoauth-interop.internal`
//! (Chromium maps it to 127.0.0.1 and trusts the harness's test CA), because the PDS refuses a
//! confidential client that redirects to loopback or to a `.test` name. Its client metadata is
//! published on the harness's client host. `atoauth serve --spa <dir> --keys … --client-id …`
//! serves the app and `POST /oauth/client-assertion` from that one origin.
//!
//! - A confidential browser app signs in, posts and refreshes; a session aged 15 days at the
//!   PDS still refreshes (2 years for confidential clients), while the same app as a public
//!   client is refused ("Session expired": 2 weeks).
//! - The route refuses each bad request on its own, a denied device is signed out at its next
//!   refresh while another device goes on, and nothing the backend logs holds a proof or an
//!   assertion.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use atoauth::http::{HardenedClient, HttpClient, TargetPolicy};
use atoauth::protocol::crypto::{Es256Key, Jwk, OsRandomness, SystemClock};
use atoauth::protocol::dpop::{DpopKey, ProofTarget};
use atoauth::reexports::http;
use atoauth::{Keyset, Url};
use atoauth_testkit::browser::{Driver, Reach};
use atoauth_testkit::spa::page::{
    OPEN_DB, expire_stored_session, in_page, post, sign_in, start_post, text_of, wait_for,
};
use atoauth_testkit::spa::{Served, serve};
use atoauth_testkit::{Account, pds};
use fantoccini::Client;
use serde_json::{Value, json};

const SPA_HOST: &str = "spa.atoauth-interop.internal";
const SCOPE: &str = "atproto repo:app.bsky.feed.post?action=create";

/// The example app, served over TLS on `SPA_HOST`, as a confidential client with its
/// client-assertion backend or as a public client.
struct App {
    _dir: tempfile::TempDir,
    served: Served,
    url: String,
    reach: Reach,
    denied_keys: PathBuf,
    client_id: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl App {
    async fn start(name: &str, confidential: bool) -> Self {
        let pds = pds();
        let dir = tempfile::tempdir().unwrap();
        let certificate = pds.certificate_for(SPA_HOST, dir.path());
        let port = free_port();
        let url = format!("https://{SPA_HOST}:{port}");
        let keys = Keyset::new([Es256Key::generate(&OsRandomness)
            .unwrap()
            .with_kid(format!("{name}-1"))])
        .unwrap();
        let keys_file = dir.path().join("keys.json");
        std::fs::write(
            &keys_file,
            serde_json::to_vec(&keys.to_private_jwks()).unwrap(),
        )
        .unwrap();
        // A path of its own per run: the PDS caches client metadata for 10 minutes.
        let path = format!("{name}-{port}/client-metadata.json");
        let client_id = format!(
            "{}/{path}",
            pds.ready().client_host_url.as_str().trim_end_matches('/')
        );
        let mut metadata = json!({
            "client_id": client_id,
            "client_name": format!("atoauth {name}"),
            "application_type": "web",
            "redirect_uris": [format!("{url}/")],
            "scope": SCOPE,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "dpop_bound_access_tokens": true,
        });
        if confidential {
            metadata["token_endpoint_auth_method"] = "private_key_jwt".into();
            metadata["token_endpoint_auth_signing_alg"] = "ES256".into();
            metadata["jwks"] = serde_json::to_value(keys.public_jwks()).unwrap();
        }
        let published = pds.register_client_metadata(&path, &metadata).await;
        assert_eq!(published.as_str(), client_id);

        let site = dir.path().join("site");
        let mut config = json!({
            "handleResolver": pds.pds_url().as_str(),
            "plcDirectory": pds.plc_url().as_str(),
            "insecureAllowLoopbackHttp": true,
            "insecureAllowClientIdPort": true,
            "clientMetadata": metadata,
        });
        if confidential {
            config["clientAssertionBackend"] = "/oauth/client-assertion".into();
        }
        atoauth_testkit::spa::build(&site, &config).unwrap();

        let denied_keys = dir.path().join("denied-keys");
        let data = dir.path().join("data");
        let listen = format!("127.0.0.1:{port}");
        let text = |p: &std::path::Path| p.to_str().unwrap().to_owned();
        let mut args = vec![
            "--listen".to_owned(),
            listen,
            "--public-url".to_owned(),
            url.clone(),
            "--tls-cert".to_owned(),
            text(&certificate.chain),
            "--tls-key".to_owned(),
            text(&certificate.key),
        ];
        if confidential {
            args.extend([
                "--keys".to_owned(),
                text(&keys_file),
                "--client-id".to_owned(),
                client_id.clone(),
                "--denied-keys".to_owned(),
                text(&denied_keys),
            ]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let served = serve(&site, &["--data-dir", &text(&data)], &args);
        Self {
            _dir: dir,
            served,
            url,
            reach: Reach {
                hosts: vec![SPA_HOST.to_owned()],
                trusted_spki: vec![certificate.ca_spki_sha256],
            },
            denied_keys,
            client_id,
        }
    }

    /// An HTTP client that reaches the app as Chromium does: its name on 127.0.0.1, the test
    /// CA trusted.
    fn http(&self) -> HardenedClient {
        let pem = std::fs::read(pds().client_host_ca()).unwrap();
        HardenedClient::builder()
            .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
            .insecure_trust_roots_pem(&pem)
            .resolve_override(
                SPA_HOST,
                vec![SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)],
            )
            .build()
            .unwrap()
    }

    fn endpoint(&self) -> String {
        format!("{}/oauth/client-assertion", self.url)
    }
}

/// Posts `text` and expects the call to fail; the page's error.
async fn post_refused(browser: &Client, text: &str) -> String {
    start_post(browser, text).await;
    wait_for(browser, "body[data-state=error]").await;
    text_of(browser, "#error").await
}

/// What the page showed when its session ended (from `onSession`): `(cause, message)`.
async fn ended_notice(browser: &Client) -> (Value, String) {
    let cause = in_page(
        browser,
        "return document.getElementById('ended').dataset.cause ?? null;",
    )
    .await;
    (cause, text_of(browser, "#ended").await)
}

/// Expires the stored access token and reloads, so the next call refreshes; the old refresh
/// token and the DPoP key's thumbprint.
async fn expire_and_reload(browser: &Client) -> (String, String) {
    let expired = expire_stored_session(browser).await;
    browser.refresh().await.unwrap();
    wait_for(browser, "body[data-state=signed-in]").await;
    let jwk: Jwk = serde_json::from_value(
        json!({"kty": "EC", "crv": "P-256", "x": expired["x"], "y": expired["y"]}),
    )
    .unwrap();
    (
        expired["refresh"].as_str().unwrap().to_owned(),
        jwk.thumbprint(),
    )
}

async fn stored_refresh_token(browser: &Client) -> Value {
    in_page(
        browser,
        &format!("{OPEN_DB} return JSON.parse((await all('sessions'))[0]).refresh_token;"),
    )
    .await
}

async fn sessions_in(browser: &Client) -> u64 {
    in_page(
        browser,
        &format!("{OPEN_DB} return (await all('sessions')).length;"),
    )
    .await
    .as_u64()
    .unwrap()
}

async fn signed_in(driver: &Driver, app: &App, account: &Account) -> Client {
    let browser = driver.browser_with(&app.reach).await;
    sign_in(&browser, &app.url, account).await;
    browser
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confidential_spa_refreshes_a_session_older_than_two_weeks_and_a_public_one_cannot() {
    let pds = pds();
    let (alice, bob) = (pds.alice(), pds.bob());
    let confidential = App::start("cab-lifetime", true).await;
    let public = App::start("public-lifetime", false).await;
    let driver = Driver::start("cab-lifetime");

    // The confidential app signs in (PAR and code exchange with assertions), posts, refreshes.
    let browser = signed_in(&driver, &confidential, alice).await;
    post(&browser, "from a confidential browser app").await;
    let (before, _) = expire_and_reload(&browser).await;
    post(&browser, "after a refresh with a client assertion").await;
    assert_ne!(stored_refresh_token(&browser).await, json!(before));
    let issued = confidential
        .served
        .logs()
        .matches("client assertion issued")
        .count();
    let timings = in_page(
        &browser,
        "return performance.getEntriesByType('resource')
           .filter((e) => e.name.endsWith('/oauth/client-assertion'))
           .map((e) => Math.round(e.duration));",
    )
    .await;
    eprintln!(
        "assertions issued for sign-in and one refresh: {issued}; this page's asks (ms): {timings}"
    );
    assert_eq!(issued, 3, "PAR, the code exchange, the refresh");

    // 15 days later at the PDS: past a public client's 2 weeks, far from a confidential 2 years.
    let aged = pds
        .age_sessions(&alice.did, &confidential.client_id, 15)
        .await;
    assert_eq!(aged, 1);
    let (before, _) = expire_and_reload(&browser).await;
    let uri = post(&browser, "15 days after signing in").await;
    eprintln!("confidential, aged 15 days: the refresh succeeded; posted {uri}");
    assert_ne!(stored_refresh_token(&browser).await, json!(before));

    // The same app as a public client.
    let other = signed_in(&driver, &public, bob).await;
    post(&other, "from a public browser app").await;
    assert_eq!(pds.age_sessions(&bob.did, &public.client_id, 15).await, 1);
    expire_and_reload(&other).await;
    let refused = post_refused(&other, "15 days after signing in, public").await;
    eprintln!("public, aged 15 days: {refused}");
    assert!(refused.contains("Session expired"), "{refused}");
    let (cause, message) = ended_notice(&other).await;
    assert_eq!(cause, json!("refresh-rejected"), "{message}");
    assert!(message.contains("Session expired"), "{message}");
    assert_eq!(sessions_in(&other).await, 0, "the ended session is gone");
    browser.close().await.unwrap();
    other.close().await.unwrap();
}

/// One request to the route: `(status, headers, body)`.
async fn ask(
    http: &HardenedClient,
    endpoint: &str,
    origin: Option<&str>,
    proof: Option<&str>,
    body: &Value,
) -> (u16, http::HeaderMap, Value) {
    let mut request = http::Request::post(endpoint).header("content-type", "application/json");
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    let response = http
        .send(request.body(body.to_string().into()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
    (status, response.headers().clone(), value)
}

fn proof(key: &DpopKey, url: &str, nonce: Option<&str>) -> String {
    key.proof(
        ProofTarget {
            method: "POST",
            url: &Url::parse(url).unwrap(),
            nonce,
            access_token: None,
        },
        &SystemClock,
        &OsRandomness,
    )
    .unwrap()
}

fn claims(jwt: &str) -> Value {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&Base64UrlUnpadded::decode_vec(part).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_assertion_endpoint_refuses_each_bad_request_and_a_denied_device_is_signed_out() {
    let pds = pds();
    let app = App::start("cab-refusals", true).await;
    let http = app.http();
    let endpoint = app.endpoint();
    let origin = app.url.as_str();
    let aud = json!({"aud": pds.issuer()});
    let key = DpopKey::generate(&OsRandomness).unwrap();
    let mut sent = Vec::new();

    // The nonce, then one good request: an assertion for this key.
    let first = proof(&key, &endpoint, None);
    let (status, headers, body) = ask(&http, &endpoint, Some(origin), Some(&first), &aud).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("use_dpop_nonce"))
    );
    let nonce = headers["dpop-nonce"].to_str().unwrap().to_owned();
    let good = proof(&key, &endpoint, Some(&nonce));
    let (status, headers, body) = ask(&http, &endpoint, Some(origin), Some(&good), &aud).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    let assertion = body["client_assertion"].as_str().unwrap().to_owned();
    let granted = claims(&assertion);
    assert_eq!(granted["cnf"]["jkt"], key.public_jwk().thumbprint());
    assert_eq!(granted["aud"], pds.issuer());
    assert!(granted["exp"].as_i64().unwrap() - granted["iat"].as_i64().unwrap() <= 60);
    sent.extend([first, good.clone()]);

    // Each refusal on its own.
    let fresh = || proof(&key, &endpoint, Some(&nonce));
    let other_origin = fresh();
    let (status, headers, _) = ask(
        &http,
        &endpoint,
        Some("https://elsewhere.example"),
        Some(&other_origin),
        &aud,
    )
    .await;
    assert_eq!(status, 403, "another origin");
    assert!(headers.get("access-control-allow-origin").is_none());

    let (status, _, body) = ask(&http, &endpoint, Some(origin), Some(&good), &aud).await;
    assert_eq!(status, 400, "a replayed proof: {body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("used before")
    );

    let other_htu = proof(&key, &format!("{}/oauth/other", app.url), Some(&nonce));
    let (status, _, body) = ask(&http, &endpoint, Some(origin), Some(&other_htu), &aud).await;
    assert_eq!(status, 400, "a proof for another htu: {body}");
    assert!(body["error_description"].as_str().unwrap().contains("htu"));

    let (status, _, body) = ask(&http, &endpoint, Some(origin), None, &aud).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "no proof"
    );

    // A real server that is not an authorization server: the harness's control server.
    let not_a_server = pds.ready().control_url.origin().ascii_serialization();
    let wrong_aud = fresh();
    let (status, _, body) = ask(
        &http,
        &endpoint,
        Some(origin),
        Some(&wrong_aud),
        &json!({"aud": not_a_server}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_audience")),
        "{body}"
    );

    std::fs::write(
        &app.denied_keys,
        format!("{}\n", key.public_jwk().thumbprint()),
    )
    .unwrap();
    let denied = fresh();
    let (status, _, body) = ask(&http, &endpoint, Some(origin), Some(&denied), &aud).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("access_denied")),
        "a denied key"
    );
    sent.extend([other_origin, other_htu, wrong_aud, denied]);
    std::fs::write(&app.denied_keys, "").unwrap();

    // Two devices signed in; one is denied: its next refresh fails, the other goes on.
    let driver = Driver::start("cab-devices");
    let lost = signed_in(&driver, &app, pds.alice()).await;
    let kept = signed_in(&driver, &app, pds.carol()).await;
    let (_, lost_device) = expire_and_reload(&lost).await;
    expire_and_reload(&kept).await;
    std::fs::write(
        &app.denied_keys,
        format!("# alice's lost laptop\n{lost_device}\n"),
    )
    .unwrap();
    let refused = post_refused(&lost, "from a denied device").await;
    eprintln!("the denied device: {refused}");
    assert!(refused.contains("refuses this device"), "{refused}");
    let (cause, message) = ended_notice(&lost).await;
    assert_eq!(cause, json!("assertion-refused"), "{message}");
    assert_eq!(sessions_in(&lost).await, 0, "its session ended");
    let uri = post(&kept, "the other device goes on").await;
    eprintln!("the other device refreshed and posted {uri}");

    // Nothing logged holds a proof or an assertion (or any other JWT).
    let logs = app.served.logs();
    for secret in sent.iter().chain([&assertion]) {
        assert!(
            !logs.contains(secret.as_str()),
            "a proof or assertion in the logs"
        );
    }
    assert!(!logs.contains("eyJ"), "a JWT in the logs:\n{logs}");
    eprintln!(
        "backend log lines: {} ({} assertions issued)",
        logs.lines().count(),
        logs.matches("client assertion issued").count()
    );
    lost.close().await.unwrap();
    kept.close().await.unwrap();
}
