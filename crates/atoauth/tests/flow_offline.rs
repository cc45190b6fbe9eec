//! The OAuth flow against a scripted, in-process authorization server reached through a closure
//! HTTP client: no network. It covers what a real PDS never does (wrong `sub`, an issuer that is
//! not authoritative, malformed token responses, a failing store) and checks every parameter the
//! client sends (G2, G5, I1, J9, K1–K4, L2–L5, P1, P3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use atoauth::OAuthError;
use atoauth::client::{AuthorizeOptions, CallbackParams, OAuthClient, Prompt};
use atoauth::client_metadata::LoopbackClient;
use atoauth::http::{HttpClient, HttpError, Request, Response};
use atoauth::identity::{HandleResolution, IdentityResolver};
use atoauth::secret::{SessionId, State};
use atoauth::session::Revocation;
use atoauth::store::{MemorySessionStore, SessionData, SessionStore, StoreError};
use atoauth::syntax::{Did, Nsid};
use atoauth::testing::ManualClock;
use atoauth_testkit::fixtures::authorization_server_metadata;
use serde_json::{Value, json};
use url::Url;

const ALICE: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const BOB: &str = "did:plc:bobbobbobbobbobbobbobbob";
const AS: &str = "https://auth.example.com";
const PDS: &str = "https://pds.example.com";
const OTHER_PDS: &str = "https://elsewhere.example.com";
const REDIRECT: &str = "http://127.0.0.1:9999/callback";

/// What the fake servers do, and what they saw.
#[derive(Default)]
struct World {
    /// The `sub` the token endpoint returns.
    token_sub: String,
    /// Overrides of the token response fields (null removes a field).
    token_overrides: BTreeMap<String, Value>,
    /// Requests seen: (method, path, form or query params, DPoP header present).
    seen: Vec<(String, String, BTreeMap<String, String>, bool)>,
    /// Status the revocation endpoint answers.
    revoke_status: u16,
    /// `Authorization` headers sent to the PDS.
    authorizations: Vec<String>,
    /// The `x` of the JWK in each DPoP proof, in order.
    dpop_keys: Vec<String>,
}

type Shared = Arc<Mutex<World>>;

fn did_document(did: &str, handle: &str, pds: &str) -> Value {
    json!({
        "id": did,
        "alsoKnownAs": [format!("at://{handle}")],
        "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": pds}]
    })
}

fn reply(status: u16, body: &Value) -> Response {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("dpop-nonce", "nonce-1")
        .body(serde_json::to_vec(body).unwrap())
        .unwrap()
}

fn answer(world: &Shared, request: &Request) -> Response {
    let url = Url::parse(&request.uri().to_string()).unwrap();
    let origin = url.origin().ascii_serialization();
    let params: BTreeMap<String, String> = if request.method() == http::Method::POST {
        url::form_urlencoded::parse(request.body())
            .into_owned()
            .collect()
    } else {
        url.query_pairs().into_owned().collect()
    };
    let dpop = request
        .headers()
        .get("dpop")
        .map(|v| v.to_str().unwrap().to_owned());
    let mut world = world.lock().unwrap();
    if let Some(authorization) = request.headers().get("authorization") {
        world
            .authorizations
            .push(authorization.to_str().unwrap().to_owned());
    }
    if let Some(proof) = &dpop {
        let header = proof.split('.').next().unwrap();
        let header: Value = serde_json::from_slice(
            &<base64ct::Base64UrlUnpadded as base64ct::Encoding>::decode_vec(header).unwrap(),
        )
        .unwrap();
        world
            .dpop_keys
            .push(header["jwk"]["x"].as_str().unwrap().to_owned());
    }
    world.seen.push((
        request.method().to_string(),
        format!("{origin}{}", url.path()),
        params.clone(),
        dpop.is_some(),
    ));
    let nonce_sent = dpop.as_deref().is_some_and(|proof| {
        let claims = proof.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(
            &<base64ct::Base64UrlUnpadded as base64ct::Encoding>::decode_vec(claims).unwrap(),
        )
        .unwrap();
        claims["nonce"] == "nonce-1"
    });
    match (origin.as_str(), url.path()) {
        ("https://plc.example.com", path) => {
            let did = path.trim_start_matches('/');
            match did {
                ALICE => reply(200, &did_document(ALICE, "alice.example.com", PDS)),
                BOB => reply(200, &did_document(BOB, "bob.example.com", OTHER_PDS)),
                _ => reply(404, &json!({})),
            }
        }
        (PDS | OTHER_PDS, "/xrpc/com.atproto.identity.resolveHandle") => {
            let did = if params["handle"] == "alice.example.com" {
                ALICE
            } else {
                BOB
            };
            reply(200, &json!({"did": did}))
        }
        (PDS, "/.well-known/oauth-protected-resource") => reply(
            200,
            &json!({"resource": PDS, "authorization_servers": [AS]}),
        ),
        (OTHER_PDS, "/.well-known/oauth-protected-resource") => reply(
            200,
            &json!({"resource": OTHER_PDS, "authorization_servers": ["https://other-auth.example.com"]}),
        ),
        ("https://other-auth.example.com", "/.well-known/oauth-authorization-server") => {
            let mut metadata = authorization_server_metadata(AS);
            let other = "https://other-auth.example.com";
            metadata["issuer"] = json!(other);
            reply(200, &metadata)
        }
        (AS, "/.well-known/oauth-authorization-server") => {
            reply(200, &authorization_server_metadata(AS))
        }
        (AS, _) if !nonce_sent => reply(400, &json!({"error": "use_dpop_nonce"})),
        (AS, "/oauth/par") => reply(
            201,
            &json!({"request_uri": "urn:ietf:params:oauth:request_uri:r1", "expires_in": 300}),
        ),
        (AS, "/oauth/token") => {
            let mut body = json!({
                "access_token": "at-1", "token_type": "DPoP", "refresh_token": "rt-1",
                "scope": "atproto transition:generic", "expires_in": 3600, "sub": world.token_sub,
            });
            for (field, value) in &world.token_overrides {
                if value.is_null() {
                    body.as_object_mut().unwrap().remove(field);
                } else {
                    body[field] = value.clone();
                }
            }
            reply(200, &body)
        }
        (AS, "/oauth/revoke") => {
            let status = world.revoke_status;
            http::Response::builder()
                .status(status)
                .header("dpop-nonce", "nonce-1")
                .body(Vec::new())
                .unwrap()
        }
        (PDS, "/xrpc/com.atproto.server.getSession") => reply(200, &json!({"did": ALICE})),
        _ => reply(404, &json!({"error": "NotFound"})),
    }
}

struct Setup {
    world: Shared,
    client: OAuthClient,
    clock: Arc<ManualClock>,
}

fn setup_with(store: Arc<dyn SessionStore>) -> Setup {
    let world: Shared = Arc::new(Mutex::new(World {
        token_sub: ALICE.to_owned(),
        revoke_status: 200,
        ..World::default()
    }));
    let handler = Arc::clone(&world);
    let http: Arc<dyn HttpClient> = Arc::new(move |request: Request| {
        let response = answer(&handler, &request);
        async move { Ok::<_, HttpError>(response) }
    });
    let resolver = IdentityResolver::builder()
        .http_client(Arc::clone(&http))
        .plc_url(Url::parse("https://plc.example.com").unwrap())
        .handle_resolution(HandleResolution::Service(Url::parse(PDS).unwrap()))
        .build()
        .unwrap();
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let loopback = LoopbackClient::new(
        ["http://127.0.0.1/callback"],
        Some("atproto transition:generic"),
    )
    .unwrap();
    let client = OAuthClient::builder()
        .loopback(loopback)
        .http_client(http)
        .identity_resolver(resolver)
        .session_store(store)
        .clock(clock.clone())
        .build()
        .unwrap();
    Setup {
        world,
        client,
        clock,
    }
}

fn setup() -> Setup {
    setup_with(Arc::new(MemorySessionStore::default()))
}

impl Setup {
    async fn start(&self, input: &str) -> (Url, State) {
        let url = self
            .client
            .start_authorization(
                input,
                AuthorizeOptions::default()
                    .redirect_uri(REDIRECT)
                    .prompt(Prompt::Login)
                    .ui_locales("fr-CA en")
                    .display("popup")
                    .app_state("app-data"),
            )
            .await
            .unwrap();
        let world = self.world.lock().unwrap();
        let (_, _, par, _) = world
            .seen
            .iter()
            .rev()
            .find(|(_, path, ..)| path.ends_with("/oauth/par"))
            .unwrap();
        (url, State::new(par["state"].clone()))
    }

    fn callback(&self, state: &State, extra: &str) -> CallbackParams {
        CallbackParams::from_query(&format!(
            "state={}&{extra}",
            url::form_urlencoded::byte_serialize(state.secret().as_bytes()).collect::<String>()
        ))
    }

    fn revocations(&self) -> usize {
        self.world
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|(_, path, _, _)| path.ends_with("/oauth/revoke"))
            .filter(|(_, _, params, _)| params.contains_key("token"))
            .count()
    }

    fn ok_callback(&self, state: &State) -> CallbackParams {
        self.callback(state, &format!("code=cod-1&iss={}", urlencode(AS)))
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn g2_g5_i1_par_carries_every_option_and_the_redirect_only_client_id_and_request_uri() {
    let setup = setup();
    let (url, _) = setup.start("alice.example.com").await;
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(
        url.as_str().split('?').next().unwrap(),
        format!("{AS}/oauth/authorize")
    );
    assert_eq!(
        pairs,
        [
            ("client_id".to_owned(), setup.client.client_id().to_owned()),
            (
                "request_uri".to_owned(),
                "urn:ietf:params:oauth:request_uri:r1".to_owned()
            ),
        ]
    );
    let world = setup.world.lock().unwrap();
    let pars: Vec<_> = world
        .seen
        .iter()
        .filter(|(_, p, ..)| p.ends_with("/oauth/par"))
        .collect();
    assert_eq!(pars.len(), 2, "one nonce retry (G4)");
    let (method, _, par, dpop) = pars[1];
    assert_eq!(method, "POST");
    assert!(dpop, "I1: DPoP on PAR");
    for (name, value) in [
        ("response_type", "code"),
        ("code_challenge_method", "S256"),
        ("redirect_uri", REDIRECT),
        ("scope", "atproto transition:generic"),
        ("login_hint", "alice.example.com"),
        ("prompt", "login"),
        ("ui_locales", "fr-CA en"),
        ("display", "popup"),
    ] {
        assert_eq!(par.get(name).map(String::as_str), Some(value), "{name}");
    }
    assert_eq!(par["code_challenge"].len(), 43);
    assert!(par["state"].len() >= 32);
    // J9: a public client sends no assertion, and never a client secret (A3).
    assert!(!par.contains_key("client_assertion") && !par.contains_key("client_secret"));
    assert!(
        !par.values().any(|v| v == "app-data"),
        "G6: app state stays local"
    );
}

#[tokio::test]
async fn scope_tokens_the_pds_would_drop_or_fail_on_are_refused_before_any_request() {
    // Permission spec §9.45–47: a malformed escape makes the official PDS answer HTTP 500; the
    // others it drops silently, so the user would consent to less than the app asked for.
    let setup = setup();
    for token in [
        "repo:%",
        "repo:%E0%A4%A",
        "repo:?collection=*",
        "rpc:a.b.c?aud=did:key:zabc%23svc",
        "blob:image/x\"y",
        "foo:bar",
    ] {
        let error = setup
            .client
            .start_authorization(
                "alice.example.com",
                AuthorizeOptions::default().scope(format!("atproto {token}")),
            )
            .await
            .unwrap_err();
        match error {
            OAuthError::InvalidScope(invalid) => assert_eq!(invalid.token, token),
            other => panic!("{token}: {other}"),
        }
    }
    assert!(setup.world.lock().unwrap().seen.is_empty());
}

#[tokio::test]
async fn d1_g2_undeclared_redirects_and_scopes_are_refused_before_any_request() {
    let setup = setup();
    for options in [
        AuthorizeOptions::default().redirect_uri("http://127.0.0.1:9/elsewhere"),
        AuthorizeOptions::default().scope("atproto transition:chat.bsky"),
        AuthorizeOptions::default().scope("transition:generic"),
    ] {
        let error = setup
            .client
            .start_authorization("alice.example.com", options)
            .await
            .unwrap_err();
        assert!(matches!(error, OAuthError::Config(_)), "{error}");
    }
    assert!(setup.world.lock().unwrap().seen.is_empty());
}

#[tokio::test]
async fn the_flow_completes_and_calls_go_to_the_pds_not_the_issuer() {
    let setup = setup();
    let (_, state) = setup.start("alice.example.com").await;
    let done = setup
        .client
        .complete_authorization(setup.ok_callback(&state))
        .await
        .unwrap();
    assert_eq!(done.app_state.as_deref(), Some("app-data"));
    let session = done.session;
    assert_eq!(session.expires_at(), Some(1_800_003_600));
    session
        .query::<serde_json::Value>(&Nsid::new("com.atproto.server.getSession").unwrap(), &[])
        .await
        .unwrap();
    let world = setup.world.lock().unwrap();
    let (_, path, _, dpop) = world.seen.last().unwrap();
    assert_eq!(
        path,
        &format!("{PDS}/xrpc/com.atproto.server.getSession"),
        "O1"
    );
    assert!(dpop);
    let token = world
        .seen
        .iter()
        .find(|(_, p, params, _)| p.ends_with("/oauth/token") && params.contains_key("code"))
        .unwrap();
    assert_eq!(token.2["grant_type"], "authorization_code");
    assert_eq!(token.2["redirect_uri"], REDIRECT, "D6: same redirect_uri");
    assert_eq!(token.2["code"], "cod-1");
    assert_eq!(token.2["code_verifier"].len(), 43);
    // I10: the access token travels as `DPoP <token>`, never `Bearer`.
    assert_eq!(world.authorizations, ["DPoP at-1"]);
    // I2: one key for the whole authorization and session.
    let keys: std::collections::BTreeSet<_> = world.dpop_keys.iter().collect();
    assert_eq!(keys.len(), 1, "{:?}", world.dpop_keys);
}

#[tokio::test]
async fn i2_every_authorization_gets_its_own_dpop_key() {
    let setup = setup();
    setup.start("alice.example.com").await;
    setup.start("alice.example.com").await;
    let world = setup.world.lock().unwrap();
    let keys: std::collections::BTreeSet<_> = world.dpop_keys.iter().collect();
    assert_eq!(keys.len(), 2);
}

#[tokio::test]
async fn l6_the_stored_session_debug_output_holds_no_secret() {
    let store = Arc::new(MemorySessionStore::default());
    let setup = setup_with(store.clone());
    let (_, state) = setup.start("alice.example.com").await;
    let session = setup
        .client
        .complete_authorization(setup.ok_callback(&state))
        .await
        .unwrap()
        .session;
    let data = session.snapshot();
    assert_eq!(data.refresh_token.as_ref().unwrap().secret(), "rt-1");
    let debug = format!("{data:?} {session:?}");
    for secret in ["at-1", "rt-1", data.dpop_key.private_scalar().unwrap()] {
        assert!(!debug.contains(secret), "{secret} leaked in {debug}");
    }
    // L6: everything needed to resume is persisted.
    assert_eq!(data.issuer, AS);
    assert_eq!(data.pds.as_str(), format!("{PDS}/"));
    assert_eq!(
        data.dpop_nonces.get(AS).map(String::as_str),
        Some("nonce-1")
    );
}

#[tokio::test]
async fn k1_k3_k4_callback_errors() {
    let setup = setup();
    let (_, state) = setup.start("alice.example.com").await;
    let error = setup
        .client
        .complete_authorization(setup.callback(&state, "response=eyJ.x.y"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OAuthError::Callback { rule: "K1", .. }),
        "{error}"
    );

    let (_, state) = setup.start("alice.example.com").await;
    let error = setup
        .client
        .complete_authorization(setup.callback(
            &state,
            "error=access_denied&error_description=The+user+said+no&error_uri=https%3A%2F%2Fas%2Fe",
        ))
        .await
        .unwrap_err();
    let OAuthError::AuthorizationFailed {
        error,
        description,
        uri,
        app_state,
    } = error
    else {
        panic!("{error}");
    };
    assert_eq!(
        (error.as_str(), description.as_deref()),
        ("access_denied", Some("The user said no"))
    );
    assert_eq!(uri.as_deref(), Some("https://as/e"));
    assert_eq!(app_state.as_deref(), Some("app-data"));

    let (_, state) = setup.start("alice.example.com").await;
    let error = setup
        .client
        .complete_authorization(setup.callback(&state, "code=cod-1"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OAuthError::Callback { rule: "K4", .. }),
        "missing iss: {error}"
    );
    assert_eq!(setup.revocations(), 0, "no token request was made");
}

#[tokio::test]
async fn k2_an_expired_pending_request_is_refused() {
    let setup = setup();
    let (_, state) = setup.start("alice.example.com").await;
    setup.clock.advance(16 * 60);
    let error = setup
        .client
        .complete_authorization(setup.ok_callback(&state))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OAuthError::Callback { rule: "K2", .. }),
        "{error}"
    );
}

#[tokio::test]
async fn l2_l5_a_malformed_token_response_is_refused_and_its_token_revoked() {
    let setup = setup();
    setup
        .world
        .lock()
        .unwrap()
        .token_overrides
        .insert("token_type".into(), json!("Bearer"));
    let (_, state) = setup.start("alice.example.com").await;
    let error = setup
        .client
        .complete_authorization(setup.ok_callback(&state))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OAuthError::InvalidResponse { rule: "L2.2", .. }),
        "{error}"
    );
    assert_eq!(setup.revocations(), 1);
}

#[tokio::test]
async fn l3_l5_another_account_is_refused_and_revoked() {
    let setup = setup();
    setup.world.lock().unwrap().token_sub = BOB.to_owned();
    let (_, state) = setup.start("alice.example.com").await;
    let error = setup
        .client
        .complete_authorization(setup.ok_callback(&state))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OAuthError::SubjectMismatch { .. }),
        "{error}"
    );
    assert_eq!(setup.revocations(), 1);
}

#[tokio::test]
async fn l4_from_a_server_url_an_issuer_that_is_not_authoritative_is_refused() {
    let setup = setup();
    // Bob's PDS names another authorization server; a login started from our AS URL that
    // returns bob must fail the authority check.
    setup.world.lock().unwrap().token_sub = BOB.to_owned();
    let (_, state) = setup.start(AS).await;
    let error = setup
        .client
        .complete_authorization(setup.ok_callback(&state))
        .await
        .unwrap_err();
    let OAuthError::NotAuthoritative { found, .. } = error else {
        panic!("{error}");
    };
    assert_eq!(found, "https://other-auth.example.com");
    assert_eq!(setup.revocations(), 1);
}

#[derive(Debug, Default)]
struct FailingStore;

#[async_trait::async_trait]
impl SessionStore for FailingStore {
    async fn get(&self, _: &Did, _: &SessionId) -> Result<Option<SessionData>, StoreError> {
        Ok(None)
    }
    async fn upsert(&self, _: &SessionData) -> Result<(), StoreError> {
        Err(StoreError::backend(std::io::Error::other("disk full")))
    }
    async fn delete(&self, _: &Did, _: &SessionId) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn list_by_did(&self, _: &Did) -> Result<Vec<SessionData>, StoreError> {
        Ok(Vec::new())
    }
    async fn list_all(&self) -> Result<Vec<SessionData>, StoreError> {
        Ok(Vec::new())
    }
}

#[tokio::test]
async fn p3_tokens_that_cannot_be_stored_are_revoked() {
    let setup = setup_with(Arc::new(FailingStore));
    let (_, state) = setup.start("alice.example.com").await;
    let error = setup
        .client
        .complete_authorization(setup.ok_callback(&state))
        .await
        .unwrap_err();
    assert!(matches!(error, OAuthError::PersistFailed(_)), "{error}");
    assert_eq!(setup.revocations(), 1);
}

#[tokio::test]
async fn p1_p2_revocation_answered_204_counts_and_local_deletion_always_happens() {
    let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::default());
    let setup = setup_with(Arc::clone(&store));
    setup.world.lock().unwrap().revoke_status = 204;
    let (_, state) = setup.start("alice.example.com").await;
    let session = setup
        .client
        .complete_authorization(setup.ok_callback(&state))
        .await
        .unwrap()
        .session;
    assert_eq!(session.sign_out().await.unwrap(), Revocation::Revoked);

    setup.world.lock().unwrap().revoke_status = 503;
    let (_, state) = setup.start("alice.example.com").await;
    let session = setup
        .client
        .complete_authorization(setup.ok_callback(&state))
        .await
        .unwrap()
        .session;
    assert!(matches!(
        session.sign_out().await.unwrap(),
        Revocation::Failed(_)
    ));
    assert!(store.list_all().await.unwrap().is_empty());
}
