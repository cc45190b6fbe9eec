//! Differential test of client metadata validation against the official PDS
//! (client requirements B6.1–B6.3): a corpus of documents — valid bases and single and double
//! mutations of every member — is published on the harness's client host, and each one is
//! sent a real PAR (a confidential client signs its assertion). The PDS's verdict must equal
//! `check_client_metadata`'s, except for the rows of [`JUSTIFIED`], each naming the rule that
//! makes atoauth stricter. Every document the PDS accepts must then sign in, exchange its code
//! and, when it declares the `refresh_token` grant, refresh.
//!
//! The PAR is written by hand here (from atoauth's public DPoP, PKCE and assertion pieces),
//! because `OAuthClient` rightly refuses to send a document it finds invalid.
// Test code: helpers outside #[test] functions may unwrap too (clippy.toml covers only those).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use atoauth::client_metadata::{
    MAX_CLIENT_METADATA_BYTES, ValidationOptions, check_client_metadata,
};
use atoauth::protocol::client_auth::Keyset;
use atoauth::protocol::crypto::{Es256Key, OsRandomness, SignerBackend, SystemClock};
use atoauth::protocol::dpop::{DpopKey, ProofTarget};
use atoauth::protocol::pkce::Pkce;
use atoauth::protocol::rules::Violation;
use atoauth_testkit::{Consent, Pds, pds};
use serde_json::{Value, json};
use url::Url;

/// Where atoauth refuses what the PDS accepts: the rule, a part of atoauth's message that
/// identifies the finding, and the spec rule that makes atoauth stricter than the server.
const JUSTIFIED: &[(&str, &str, &str)] = &[
    (
        "B5.3",
        "\"grant_types\" is missing",
        "required by the spec (B5.3); the server defaults it to authorization_code",
    ),
    (
        "B5.5",
        "\"response_types\" is missing",
        "required by the spec (B5.5); the server defaults it to [\"code\"]",
    ),
    (
        "B5.8",
        "must not be \"none\"",
        "the signing alg MUST NOT be `none` (B5.8); the server takes the string",
    ),
    (
        "B5.10",
        "private or secret part",
        "a published private key is a leaked key (B5.10, J7); the server only ignores it",
    ),
    (
        "B5.11",
        "must be an https URL",
        "logo, terms, policy and home page URLs are https only (B5.11); the server also takes http on loopback",
    ),
    (
        "A3",
        "client_secret",
        "`client_secret` does not exist in this profile (A3); the server ignores unknown members",
    ),
];

fn justification(violation: &Violation) -> Option<&'static str> {
    JUSTIFIED
        .iter()
        .find(|(rule, part, _)| violation.rule == *rule && violation.message.contains(part))
        .map(|(rule, _, _)| *rule)
}

/// Members to set (or remove, with `None`) on a base document.
type Edits = Vec<(&'static str, Option<Value>)>;

struct Client {
    keyset: Keyset,
    jwk: Value,
    host: String,
}

fn bases(client: &Client) -> Vec<(&'static str, Value)> {
    let redirect = format!("https://app.{}/cb", client.host);
    // D3: the client_id host (clients.<host>) reversed.
    let scheme = format!("clients.{}", client.host)
        .split('.')
        .rev()
        .collect::<Vec<_>>()
        .join(".");
    vec![
        (
            "confidential",
            json!({
                "application_type": "web",
                "grant_types": ["authorization_code", "refresh_token"],
                "scope": "atproto transition:generic",
                "response_types": ["code"],
                "redirect_uris": [redirect],
                "token_endpoint_auth_method": "private_key_jwt",
                "token_endpoint_auth_signing_alg": "ES256",
                "dpop_bound_access_tokens": true,
                "jwks": {"keys": [client.jwk]},
                "client_name": "Differential",
            }),
        ),
        (
            "public",
            json!({
                "application_type": "web",
                "grant_types": ["authorization_code", "refresh_token"],
                "scope": "atproto",
                "response_types": ["code"],
                "redirect_uris": [redirect],
                "token_endpoint_auth_method": "none",
                "dpop_bound_access_tokens": true,
            }),
        ),
        (
            "native",
            json!({
                "application_type": "native",
                "grant_types": ["authorization_code", "refresh_token"],
                "scope": "atproto",
                "response_types": ["code"],
                "redirect_uris": [format!("{scheme}:/cb"), "http://127.0.0.1/cb"],
                "token_endpoint_auth_method": "none",
                "dpop_bound_access_tokens": true,
            }),
        ),
    ]
}

/// Single mutations: `(name, member, value)`; `Value::Null` in a `remove:` name removes it.
fn mutations(client: &Client) -> Vec<(String, &'static str, Option<Value>)> {
    let host = &client.host;
    let app = format!("https://app.{host}");
    let mut jwk_no_kid = client.jwk.clone();
    jwk_no_kid.as_object_mut().unwrap().remove("kid");
    jwk_no_kid["x"] = json!("AAAA");
    let mut jwk_empty_kid = client.jwk.clone();
    jwk_empty_kid["kid"] = json!("");
    let mut jwk_enc = client.jwk.clone();
    jwk_enc["use"] = json!("enc");
    let mut jwk_sign_ops = client.jwk.clone();
    jwk_sign_ops["key_ops"] = json!(["sign"]);
    jwk_sign_ops.as_object_mut().unwrap().remove("use");
    let mut jwk_verify_ops = client.jwk.clone();
    jwk_verify_ops["key_ops"] = json!(["verify"]);
    let private = Es256Key::from_secret_bytes(&[9; 32], SignerBackend::P256)
        .unwrap()
        .with_kid("leaked")
        .to_private_jwk();
    let mut off_curve = client.jwk.clone();
    off_curve["kid"] = json!("k-off-curve");
    off_curve["y"] = off_curve["x"].clone();
    let mut rsa = json!({"kty": "RSA", "kid": "rsa", "n": "sXch", "e": "AQAB", "use": "sig"});
    rsa["alg"] = json!("RS256");
    let set = |keys: Vec<Value>| Some(json!({ "keys": keys }));
    let one = |v: Value| Some(v);
    let k = client.jwk.clone();
    let mut out: Vec<(String, &'static str, Option<Value>)> = Vec::new();
    let mut add = |member: &'static str, values: Vec<Option<Value>>| {
        for value in values {
            let name = match &value {
                None => format!("{member}: removed"),
                Some(v) => format!(
                    "{member}: {}",
                    v.to_string().chars().take(70).collect::<String>()
                ),
            };
            out.push((name, member, value));
        }
    };
    add(
        "application_type",
        vec![
            None,
            one(json!("desktop")),
            one(Value::Null),
            one(json!(1)),
            one(json!("native")),
        ],
    );
    add(
        "grant_types",
        vec![
            None,
            one(json!([])),
            one(json!(["authorization_code"])),
            one(json!(["refresh_token"])),
            one(json!(["authorization_code", "implicit"])),
            one(json!(["authorization_code", "password"])),
            one(json!([
                "authorization_code",
                "refresh_token",
                "authorization_code"
            ])),
            one(json!(["authorization_code", "refresh_token", "foo"])),
            one(json!("authorization_code")),
            one(Value::Null),
        ],
    );
    add(
        "scope",
        vec![
            None,
            one(Value::Null),
            one(json!("transition:generic")),
            one(json!("atproto  transition:generic")),
            one(json!(" atproto")),
            one(json!("atproto atproto")),
            one(json!("atproto foo:bar")),
            one(json!("atproto \"x\"")),
            one(json!(7)),
        ],
    );
    add(
        "response_types",
        vec![
            None,
            one(json!([])),
            one(json!(["token"])),
            one(json!(["code", "code"])),
            one(json!(["code", "token"])),
            one(json!(["codes"])),
            one(json!("code")),
            one(Value::Null),
        ],
    );
    add(
        "redirect_uris",
        vec![
            None,
            one(json!([])),
            one(json!([format!("http://app.{host}/cb")])),
            one(json!(["https://127.0.0.1/cb"])),
            one(json!(["https://localhost/cb"])),
            one(json!(["https://intranet/cb"])),
            one(json!(["https://app.example.test/cb"])),
            one(json!(["https://app.local/cb"])),
            one(json!([format!("https://App.{host}/cb")])),
            one(json!([format!("HTTPS://app.{host}/cb")])),
            one(json!([format!(" {app}/cb")])),
            one(json!([format!("{app}/cb#frag")])),
            one(json!([format!("{app}/cb"), format!("{app}/cb")])),
            one(json!([format!("https://u:p@app.{host}/cb")])),
            one(json!([format!("{app}/cb"), 5])),
            one(json!(["com.example.app:/cb"])),
            one(json!([format!("https://app.{host}:443/cb")])),
            one(json!(["https://app.atoauth.arpa/cb"])),
            one(json!(Value::Null)),
        ],
    );
    add(
        "token_endpoint_auth_method",
        vec![
            None,
            one(json!("client_secret_basic")),
            one(json!("none")),
            one(json!("foo")),
            one(Value::Null),
        ],
    );
    add(
        "token_endpoint_auth_signing_alg",
        vec![
            None,
            one(json!("none")),
            one(json!("ES384")),
            one(json!("HS256")),
            one(Value::Null),
            one(json!(5)),
        ],
    );
    add(
        "dpop_bound_access_tokens",
        vec![
            None,
            one(json!(false)),
            one(Value::Null),
            one(json!("true")),
        ],
    );
    add(
        "jwks",
        vec![
            None,
            one(Value::Null),
            set(vec![]),
            set(vec![json!(private.clone())]),
            set(vec![k.clone(), json!(private)]),
            set(vec![k.clone(), jwk_no_kid]),
            set(vec![k.clone(), jwk_empty_kid]),
            set(vec![jwk_enc]),
            set(vec![jwk_sign_ops]),
            set(vec![jwk_verify_ops]),
            set(vec![k.clone(), off_curve]),
            set(vec![k.clone(), k.clone()]),
            set(vec![k.clone(), rsa]),
            one(json!([k])),
        ],
    );
    add("jwks_uri", vec![one(json!(format!("{app}/jwks.json")))]);
    add(
        "client_name",
        vec![one(json!(42)), one(Value::Null), one(json!(""))],
    );
    add(
        "client_uri",
        vec![
            one(json!("CLIENT_ID")),
            one(json!("ORIGIN")),
            one(json!(format!("{app}/"))),
            one(json!("http://127.0.0.1/")),
            one(Value::Null),
            one(json!(5)),
        ],
    );
    add(
        "logo_uri",
        vec![
            one(json!("http://127.0.0.1/logo.png")),
            one(json!("https://localhost/logo.png")),
            one(json!("https://intranet/logo.png")),
            one(json!(format!("{app}/logo.png"))),
            one(json!("not a url")),
            one(Value::Null),
        ],
    );
    add(
        "tos_uri",
        vec![one(json!(format!("{app}/tos"))), one(json!(["x"]))],
    );
    add("policy_uri", vec![one(json!("https://app.local/policy"))]);
    add(
        "contacts",
        vec![
            one(json!(["dev@app.atoauth.io"])),
            one(json!(["nope"])),
            one(json!("dev@app.atoauth.io")),
            one(json!([])),
        ],
    );
    add(
        "require_auth_time",
        vec![one(json!(true)), one(json!("yes")), one(Value::Null)],
    );
    add(
        "default_max_age",
        vec![one(json!(60)), one(Value::Null), one(json!("60"))],
    );
    add("userinfo_signed_response_alg", vec![one(json!("RS256"))]);
    add("id_token_signed_response_alg", vec![one(json!("RS256"))]);
    add(
        "tls_client_certificate_bound_access_tokens",
        vec![one(json!(true)), one(json!(false)), one(Value::Null)],
    );
    add(
        "subject_type",
        vec![
            one(json!("public")),
            one(json!("pairwise")),
            one(json!("x")),
            one(Value::Null),
        ],
    );
    add(
        "authorization_details_types",
        vec![one(json!([])), one(json!(["x"])), one(Value::Null)],
    );
    add(
        "authorization_encrypted_response_enc",
        vec![one(json!("A128CBC-HS256"))],
    );
    add(
        "request_object_signing_alg",
        vec![one(json!("ES256")), one(json!(5))],
    );
    add("client_secret", vec![one(json!("s"))]);
    add("foo", vec![one(json!(1))]);
    add(
        "client_id",
        vec![
            one(json!("UPPER")),
            one(json!("SPACE")),
            one(Value::Null),
            one(json!(42)),
            None,
        ],
    );
    out
}

/// Applies a mutation; `client_id` sentinels are resolved against the document's URL.
fn apply(document: &mut Value, url: &Url, member: &str, value: Option<&Value>) {
    let object = document.as_object_mut().unwrap();
    let client_id = url.as_str();
    match (member, value) {
        (_, None) => {
            object.remove(member);
        }
        ("client_id", Some(Value::String(s))) if s == "UPPER" => {
            object.insert(
                member.into(),
                json!(client_id.replacen("clients.", "CLIENTS.", 1)),
            );
        }
        ("client_id", Some(Value::String(s))) if s == "SPACE" => {
            object.insert(member.into(), json!(format!("{client_id} ")));
        }
        ("client_uri", Some(Value::String(s))) if s == "CLIENT_ID" => {
            object.insert(member.into(), json!(client_id));
        }
        ("client_uri", Some(Value::String(s))) if s == "ORIGIN" => {
            object.insert(member.into(), json!(url.origin().ascii_serialization()));
        }
        (_, Some(value)) => {
            object.insert(member.into(), value.clone());
        }
    }
}

/// The PDS's verdict on one published document: accepted (through sign-in, token and refresh
/// when declared) or refused, with its words.
async fn pds_verdict(
    pds: &Pds,
    client: &Client,
    url: &Url,
    document: &Value,
) -> Result<(), String> {
    let client_id = document["client_id"]
        .as_str()
        .unwrap_or(url.as_str())
        .to_owned();
    let redirect_uri = document["redirect_uris"][0]
        .as_str()
        .map_or_else(|| format!("https://app.{}/cb", client.host), str::to_owned);
    let confidential = document["token_endpoint_auth_method"] == "private_key_jwt";
    let flow = Flow::new(pds, client, client_id, confidential).await;
    let pkce = Pkce::generate(&OsRandomness).unwrap();
    let par = flow
        .post(
            &flow.endpoints.par,
            &[
                ("response_type", "code"),
                ("code_challenge", &pkce.challenge),
                ("code_challenge_method", "S256"),
                ("state", "differential-state"),
                ("redirect_uri", &redirect_uri),
                ("scope", "atproto"),
            ],
        )
        .await?;
    let request_uri = par["request_uri"].as_str().ok_or("no request_uri")?;
    let mut authorize = Url::parse(&flow.endpoints.authorize).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", &flow.client_id)
        .append_pair("request_uri", request_uri);
    let redirect = pds
        .authorize(authorize.as_str(), pds.alice(), Consent::Accept)
        .await
        .map_err(|e| format!("ACCEPTED AT PAR, then sign-in failed: {e:?}"))?;
    let code = redirect
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| format!("ACCEPTED AT PAR, then no code: {redirect}"))?;
    let tokens = flow
        .post(
            &flow.endpoints.token,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &redirect_uri),
                ("code_verifier", pkce.verifier.secret()),
            ],
        )
        .await
        .map_err(|e| format!("ACCEPTED AT PAR, then the token request failed: {e}"))?;
    let declares_refresh = document["grant_types"]
        .as_array()
        .is_some_and(|g| g.iter().any(|g| g == "refresh_token"));
    if declares_refresh {
        let refresh_token = tokens["refresh_token"]
            .as_str()
            .ok_or("ACCEPTED, then no refresh token although the grant is declared")?;
        flow.post(
            &flow.endpoints.token,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
        .map_err(|e| format!("ACCEPTED, then the refresh failed: {e}"))?;
    }
    Ok(())
}

struct Endpoints {
    issuer: String,
    par: String,
    authorize: String,
    token: String,
}

/// One client's requests to the authorization server: DPoP with nonce retry, and the client
/// assertion for a confidential client.
struct Flow<'a> {
    client: &'a Client,
    client_id: String,
    confidential: bool,
    endpoints: Endpoints,
    dpop: DpopKey,
    nonce: std::sync::Mutex<Option<String>>,
    http: reqwest::Client,
}

impl<'a> Flow<'a> {
    async fn new(pds: &Pds, client: &'a Client, client_id: String, confidential: bool) -> Self {
        let http = atoauth_testkit::http_client();
        let metadata: Value = http
            .get(format!(
                "{}/.well-known/oauth-authorization-server",
                pds.issuer()
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let field = |name: &str| metadata[name].as_str().unwrap().to_owned();
        Self {
            client,
            client_id,
            confidential,
            endpoints: Endpoints {
                issuer: field("issuer"),
                par: field("pushed_authorization_request_endpoint"),
                authorize: field("authorization_endpoint"),
                token: field("token_endpoint"),
            },
            dpop: DpopKey::generate(&OsRandomness).unwrap(),
            nonce: std::sync::Mutex::new(None),
            http,
        }
    }

    async fn post(&self, endpoint: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        for _ in 0..2 {
            let mut form: Vec<(String, String)> = params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            form.push(("client_id".into(), self.client_id.clone()));
            if self.confidential {
                let assertion = self
                    .client
                    .keyset
                    .assertion(
                        "k1",
                        &self.client_id,
                        &self.endpoints.issuer,
                        &SystemClock,
                        &OsRandomness,
                    )
                    .unwrap()
                    .unwrap();
                form.push((
                    "client_assertion_type".into(),
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push(("client_assertion".into(), assertion));
            }
            let url = Url::parse(endpoint).unwrap();
            let nonce = self.nonce.lock().unwrap().clone();
            let proof = self
                .dpop
                .proof(
                    ProofTarget {
                        method: "POST",
                        url: &url,
                        nonce: nonce.as_deref(),
                        access_token: None,
                    },
                    &SystemClock,
                    &OsRandomness,
                )
                .unwrap();
            let response = self
                .http
                .post(endpoint)
                .header("DPoP", proof)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(
                    url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(&form)
                        .finish(),
                )
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if let Some(nonce) = response
                .headers()
                .get("dpop-nonce")
                .and_then(|v| v.to_str().ok())
            {
                *self.nonce.lock().unwrap() = Some(nonce.to_owned());
            }
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if body["error"] == "use_dpop_nonce" {
                continue;
            }
            return if (200..300).contains(&status) {
                Ok(body)
            } else {
                Err(format!("HTTP {status} {body}"))
            };
        }
        Err("the DPoP nonce was refused twice".to_owned())
    }
}

fn errors(violations: &[Violation]) -> Vec<&Violation> {
    violations.iter().filter(|v| v.is_error()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_metadata_is_judged_as_the_pds_judges_it() {
    let pds = pds();
    let key = Es256Key::generate(&OsRandomness).unwrap().with_kid("k1");
    let keyset = Keyset::new([key]).unwrap();
    let jwk = serde_json::to_value(keyset.public_jwk("k1").unwrap()).unwrap();
    let host_url = pds.ready().client_host_url.clone();
    let client = Client {
        keyset,
        jwk,
        host: host_url
            .host_str()
            .unwrap()
            .trim_start_matches("clients.")
            .to_owned(),
    };
    // A JWKS for the jwks_uri mutation, on the client host.
    let run = std::process::id();

    let bases = bases(&client);
    let singles = mutations(&client);
    let mut corpus: Vec<(String, Value, Edits)> = Vec::new();
    for (base_name, base) in &bases {
        corpus.push(((*base_name).to_owned(), base.clone(), vec![]));
    }
    for (name, member, value) in &singles {
        corpus.push((
            format!("confidential / {name}"),
            bases[0].1.clone(),
            vec![(*member, value.clone())],
        ));
    }
    for (name, member, value) in singles.iter().filter(|(_, m, _)| {
        [
            "redirect_uris",
            "application_type",
            "jwks",
            "token_endpoint_auth_signing_alg",
            "client_uri",
            "scope",
        ]
        .contains(m)
    }) {
        for (base_name, base) in &bases[1..] {
            corpus.push((
                format!("{base_name} / {name}"),
                base.clone(),
                vec![(*member, value.clone())],
            ));
        }
    }
    // Double mutations, seeded.
    let mut seed: u64 = 0x00c0_ffee;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(seed >> 33).unwrap() % n
    };
    for _ in 0..30 {
        let (a, b) = (&singles[next(singles.len())], &singles[next(singles.len())]);
        if a.1 == b.1 {
            continue;
        }
        corpus.push((
            format!("confidential / {} + {}", a.0, b.0),
            bases[0].1.clone(),
            vec![(a.1, a.2.clone()), (b.1, b.2.clone())],
        ));
    }
    // Over the size the server reads.
    let mut big = bases[1].1.clone();
    big["client_name"] = json!("x".repeat(MAX_CLIENT_METADATA_BYTES));
    corpus.push(("public / 512 KiB client_name".to_owned(), big, vec![]));
    assert!(corpus.len() >= 150, "only {} documents", corpus.len());

    let jwks_path = format!("differential-{run}/jwks.json");
    let jwks_url = pds
        .register_client_metadata(&jwks_path, &json!({"keys": [client.jwk]}))
        .await;

    let mut failures = Vec::new();
    let mut justified: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut accepted, mut warned) = (0, 0);
    let started = std::time::Instant::now();
    for (i, (name, base, edits)) in corpus.iter().enumerate() {
        let path = format!("differential-{run}/{i}/client-metadata.json");
        let url = pds.ready().client_host_url.join(&path).unwrap();
        let mut document = base.clone();
        document["client_id"] = json!(url.as_str());
        for (member, value) in edits {
            apply(&mut document, &url, member, value.as_ref());
        }
        if document.get("jwks_uri").is_some() {
            document["jwks_uri"] = json!(jwks_url.as_str());
            document.as_object_mut().unwrap().remove("jwks");
        }
        pds.register_client_metadata(&path, &document).await;

        let size = document.to_string().len();
        let options = ValidationOptions {
            fetched_from: Some(
                document["client_id"]
                    .as_str()
                    .unwrap_or(url.as_str())
                    .to_owned(),
            ),
            insecure_allow_client_id_port: true,
        };
        let mut ours = check_client_metadata(&document, &options);
        if size > MAX_CLIENT_METADATA_BYTES {
            ours.push(Violation::error("B6.1", "larger than 512 KiB"));
        }
        let our_errors = errors(&ours);
        warned += usize::from(our_errors.is_empty() && !ours.is_empty());
        let verdict = pds_verdict(pds, &client, &url, &document).await;
        match (&verdict, our_errors.is_empty()) {
            (Ok(()), true) => accepted += 1,
            (Err(pds_error), true) => failures.push(format!(
                "{name}: atoauth calls it valid, the PDS refuses it: {pds_error}"
            )),
            (Ok(()), false) => {
                accepted += 1;
                let unjustified: Vec<String> = our_errors
                    .iter()
                    .filter(|v| justification(v).is_none())
                    .map(ToString::to_string)
                    .collect();
                if unjustified.is_empty() {
                    for rule in our_errors.iter().filter_map(|v| justification(v)) {
                        *justified.entry(rule).or_default() += 1;
                    }
                } else {
                    failures.push(format!(
                        "{name}: the PDS accepts it, atoauth says {}",
                        unjustified.join("; ")
                    ));
                }
            }
            (Err(pds_error), false) => {
                if pds_error.starts_with("ACCEPTED") {
                    failures.push(format!("{name}: {pds_error}"));
                }
            }
        }
    }
    eprintln!(
        "client metadata differential: {} documents in {:?}, {accepted} accepted by the PDS \
         ({warned} with warnings only), justified differences {justified:?}",
        corpus.len(),
        started.elapsed()
    );
    assert!(
        accepted >= 40,
        "the corpus must exercise accepted documents"
    );
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
