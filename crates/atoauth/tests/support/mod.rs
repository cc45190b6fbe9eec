//! In-process servers on 127.0.0.1 that play a PLC directory and PDSes with their authorization
//! servers, each scriptable to misbehave. Real HTTP through atoauth's hardened client (with the
//! loopback development policy), but none of the official PDS's good manners.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atoauth::OAuthError;
use atoauth::client::{AuthorizeOptions, CallbackParams, OAuthClient, OAuthClientBuilder};
use atoauth::client_metadata::LoopbackClient;
use atoauth::http::TargetPolicy;
use atoauth::identity::{HandleResolution, IdentityResolver};
use atoauth::store::{MemorySessionStore, SessionStore};
use atoauth_testkit::fixtures::authorization_server_metadata;
use atoauth_testkit::{Reply, SeenRequest, TestServer};
use serde_json::{Value, json};

pub const ALICE: &str = "did:plc:alicealicealicealicealic";
pub const BOB: &str = "did:plc:bobbobbobbobbobbobbobbob";

/// How a fake server misbehaves.
#[derive(Clone, Debug, Default)]
pub struct Hostile {
    pub metadata_redirect: bool,
    pub oversized_metadata: bool,
    pub issuer_mismatch: bool,
    pub nonce_never_satisfies: bool,
    pub token_delay: Option<Duration>,
    pub granted_scope: Option<String>,
    pub token_sub: Option<String>,
}

#[derive(Debug, Default)]
pub struct ServerState {
    pub origin: String,
    /// The authorization server its protected-resource document names (itself when `None`).
    pub authorization_server: Option<String>,
    pub hostile: Hostile,
    pub last_state: Option<String>,
    pub refresh_tokens: HashSet<String>,
    pub issued: usize,
    pub xrpc_calls: usize,
    pub revocations: usize,
    pub par_requests: usize,
    pub nonce_counter: usize,
}

/// One fake PDS that is also an authorization server (like the official PDS).
pub struct FakeServer {
    pub server: TestServer,
    pub state: Arc<Mutex<ServerState>>,
}

impl FakeServer {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(ServerState::default()));
        let handler_state = Arc::clone(&state);
        let server = TestServer::start(move |request| answer(&handler_state, request)).await;
        state.lock().unwrap().origin = server.url().as_str().trim_end_matches('/').to_owned();
        Self { server, state }
    }

    pub fn origin(&self) -> String {
        self.state.lock().unwrap().origin.clone()
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut ServerState) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }
}

fn form(request: &SeenRequest) -> HashMap<String, String> {
    url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect()
}

fn json_reply(status: u16, body: &Value, nonce: &str) -> Reply {
    Reply::status(status)
        .header("content-type", "application/json")
        .header("dpop-nonce", nonce)
        .body(body.to_string())
}

fn answer(state: &Arc<Mutex<ServerState>>, request: &SeenRequest) -> Reply {
    let mut s = state.lock().unwrap();
    let origin = s.origin.clone();
    let path = request
        .target
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    let nonce = if s.hostile.nonce_never_satisfies {
        s.nonce_counter += 1;
        format!("n{}", s.nonce_counter)
    } else {
        "n0".to_owned()
    };
    match (request.method.as_str(), path.as_str()) {
        ("GET", "/.well-known/oauth-protected-resource") => {
            let authorization_server = s.authorization_server.clone().unwrap_or(origin.clone());
            json_reply(
                200,
                &json!({"resource": origin, "authorization_servers": [authorization_server]}),
                &nonce,
            )
        }
        ("GET", "/.well-known/oauth-authorization-server") => {
            if s.hostile.metadata_redirect {
                return Reply::redirect(302, &format!("{origin}/elsewhere"));
            }
            let mut document = authorization_server_metadata(&origin);
            if s.hostile.issuer_mismatch {
                document["issuer"] = json!("http://127.0.0.1:1");
            }
            if s.hostile.oversized_metadata {
                document["padding"] = json!("x".repeat(200 * 1024));
            }
            json_reply(200, &document, &nonce)
        }
        ("POST", "/oauth/par") => {
            s.par_requests += 1;
            if s.hostile.nonce_never_satisfies {
                return json_reply(400, &json!({"error": "use_dpop_nonce"}), &nonce);
            }
            s.last_state = form(request).get("state").cloned();
            json_reply(
                201,
                &json!({"request_uri": "urn:ietf:params:oauth:request_uri:x", "expires_in": 300}),
                &nonce,
            )
        }
        ("POST", "/oauth/token") => {
            let params = form(request);
            if params["grant_type"] == "refresh_token"
                && !s.refresh_tokens.remove(&params["refresh_token"])
            {
                return json_reply(
                    400,
                    &json!({"error": "invalid_grant", "error_description": "replayed"}),
                    &nonce,
                );
            }
            s.issued += 1;
            let refresh = format!("rt-{}", s.issued);
            s.refresh_tokens.insert(refresh.clone());
            let sub = s
                .hostile
                .token_sub
                .clone()
                .unwrap_or_else(|| ALICE.to_owned());
            let scope = s
                .hostile
                .granted_scope
                .clone()
                .unwrap_or_else(|| "atproto".to_owned());
            let mut reply = json_reply(
                200,
                &json!({
                    "access_token": format!("at-{}", s.issued), "token_type": "DPoP",
                    "refresh_token": refresh, "scope": scope, "sub": sub, "expires_in": 3600,
                }),
                &nonce,
            );
            if let Some(delay) = s.hostile.token_delay {
                reply = reply.delayed(delay);
            }
            reply
        }
        ("POST", "/oauth/revoke") => {
            s.revocations += 1;
            json_reply(200, &json!({}), &nonce)
        }
        ("GET", "/xrpc/com.atproto.server.getSession") => {
            s.xrpc_calls += 1;
            let authorization = request
                .headers
                .get("authorization")
                .cloned()
                .unwrap_or_default();
            if !authorization.starts_with("DPoP at-") {
                return Reply::status(401)
                    .header("dpop-nonce", &nonce)
                    .header("www-authenticate", "DPoP error=\"invalid_token\"");
            }
            json_reply(
                200,
                &json!({"did": ALICE, "handle": "alice.example.com"}),
                &nonce,
            )
        }
        ("GET", "/xrpc/com.atproto.identity.resolveHandle") => {
            json_reply(200, &json!({"did": ALICE}), &nonce)
        }
        _ => json_reply(404, &json!({"error": "NotFound"}), &nonce),
    }
}

/// A PLC directory whose documents the test rewrites (an account migrating).
pub struct FakePlc {
    pub server: TestServer,
    pub documents: Arc<Mutex<HashMap<String, Value>>>,
}

impl FakePlc {
    pub async fn start() -> Self {
        let documents: Arc<Mutex<HashMap<String, Value>>> = Arc::default();
        let served = Arc::clone(&documents);
        let server = TestServer::start(move |request| {
            let did = request.target.trim_start_matches('/');
            match served.lock().unwrap().get(did) {
                Some(document) => Reply::json(document),
                None => Reply::status(404),
            }
        })
        .await;
        Self { server, documents }
    }

    /// `did` (handle `handle`) lives on `pds`.
    pub fn place(&self, did: &str, handle: &str, pds: &str) {
        self.documents.lock().unwrap().insert(
            did.to_owned(),
            json!({
                "id": did,
                "alsoKnownAs": [format!("at://{handle}")],
                "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": pds}],
            }),
        );
    }
}

/// A development client that reaches the fake servers.
pub fn client_builder(
    plc: &FakePlc,
    handle_service: &FakeServer,
    store: Arc<dyn SessionStore>,
) -> OAuthClientBuilder {
    let resolver = IdentityResolver::builder()
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .plc_url(plc.server.url())
        .handle_resolution(HandleResolution::Service(
            url::Url::parse(&handle_service.origin()).unwrap(),
        ))
        .build()
        .unwrap();
    OAuthClient::builder()
        .loopback(LoopbackClient::new(["http://127.0.0.1/callback"], Some("atproto")).unwrap())
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .identity_resolver(resolver)
        .session_store(store)
}

pub fn memory_store() -> Arc<dyn SessionStore> {
    Arc::new(MemorySessionStore::default())
}

/// Runs the flow for `input`, with the authorization server `server` issuing the code; the
/// callback carries `iss` (or `iss_override`).
pub async fn sign_in(
    client: &OAuthClient,
    input: &str,
    server: &FakeServer,
    iss_override: Option<&str>,
) -> Result<atoauth::session::OAuthSession, OAuthError> {
    client
        .start_authorization(input, AuthorizeOptions::default())
        .await?;
    let state = server
        .with(|s| s.last_state.clone())
        .expect("PAR carried a state");
    let iss = iss_override.map_or_else(|| server.origin(), str::to_owned);
    let query = format!(
        "state={}&code=c1&iss={}",
        urlencode(&state),
        urlencode(&iss)
    );
    Ok(client
        .complete_authorization(CallbackParams::from_query(&query))
        .await?
        .session)
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
