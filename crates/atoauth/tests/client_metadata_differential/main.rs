//! Differential test of client metadata validation against the official PDS
//! (client requirements B6.1–B6.3): a corpus of documents — valid bases, single mutations of
//! every member, seeded combinations of the members whose rules depend on each other, and
//! seeded sets of two to four mutations (`corpus.rs`) — is published on the harness's client host, and each one is
//! sent a real PAR (a confidential client signs its assertion). The PDS's verdict must equal
//! `check_client_metadata`'s, except for the rows of [`JUSTIFIED`], each naming the rule that
//! makes atoauth stricter. Every document the PDS accepts must then sign in, exchange its code
//! and, when it declares the `refresh_token` grant, refresh.
//!
//! Every run prints its seed; `ATOAUTH_DIFFERENTIAL_SEED=<seed> cargo test -p atoauth --test
//! client_metadata_differential` replays it, and any other seed draws new combinations.
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
use atoauth::protocol::crypto::{Es256Key, OsRandomness, SystemClock};
use atoauth::protocol::dpop::{DpopKey, ProofTarget};
use atoauth::protocol::pkce::Pkce;
use atoauth::protocol::rules::Violation;
use atoauth_testkit::{Consent, Pds, pds};
use serde_json::{Value, json};
use url::Url;

mod corpus;

use corpus::{Client, Edits, Rng, apply, bases, interplay, mutations, several};

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
        "D3",
        "exactly one slash",
        "a private-use redirect is `<scheme>:/<path>` (D3, RFC 8252 §7.1); the server also takes \
         `<scheme>:<path>`",
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
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&form)
                .finish();
            let response = self
                .http
                .post(endpoint)
                .header("DPoP", proof)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
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

/// A JWKS fetched through atoauth's hardened HTTP path, as the CLI fetches one, trusting the
/// harness's client host (its CA, its name on 127.0.0.1) and nothing else on this machine.
async fn fetch_jwks(pds: &Pds, uri: &str) -> Option<Value> {
    use atoauth::http::{HardenedClient, HttpClient, TargetPolicy};
    let host = pds.ready().client_host_url.host_str()?.to_owned();
    let client = HardenedClient::builder()
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .insecure_trust_roots_pem(&std::fs::read(pds.client_host_ca()).ok()?)
        .resolve_override(&host, vec![std::net::SocketAddr::from(([127, 0, 0, 1], 0))])
        .build()
        .ok()?;
    let request = http::Request::get(uri).body(bytes::Bytes::new()).ok()?;
    let response = client.send(request).await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    serde_json::from_slice(response.body()).ok()
}

/// Whether the document is compared, and how it ended.
enum Outcome {
    Accepted { warned: bool },
    Refused,
    Justified(Vec<&'static str>),
    Different(String),
}

/// Publishes one document, asks the PDS, and compares its verdict with atoauth's.
async fn judge(
    pds: &'static Pds,
    client: &Client,
    path: String,
    name: &str,
    document: Value,
) -> Outcome {
    let url = pds.ready().client_host_url.join(&path).unwrap();
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
    // As `atoauth client-metadata validate <url>` does: a jwks_uri is fetched, and one that
    // does not answer with a JWKS is an error (the server fetches it too, for any client).
    if let Some(jwks_uri) = document.get("jwks_uri").and_then(Value::as_str)
        && errors(&ours).is_empty()
        && !fetch_jwks(pds, jwks_uri)
            .await
            .is_some_and(|j| j["keys"].is_array())
    {
        ours.push(Violation::error(
            "B5.10",
            "the JWKS at jwks_uri cannot be fetched",
        ));
    }
    let our_errors = errors(&ours);
    let verdict = pds_verdict(pds, client, &url, &document).await;
    match (&verdict, our_errors.is_empty()) {
        (Ok(()), true) => Outcome::Accepted {
            warned: !ours.is_empty(),
        },
        (Err(pds_error), true) => Outcome::Different(format!(
            "{name}: atoauth calls it valid, the PDS refuses it: {pds_error}\n    {document}"
        )),
        (Ok(()), false) => {
            let unjustified: Vec<String> = our_errors
                .iter()
                .filter(|v| justification(v).is_none())
                .map(ToString::to_string)
                .collect();
            if unjustified.is_empty() {
                Outcome::Justified(our_errors.iter().filter_map(|v| justification(v)).collect())
            } else {
                Outcome::Different(format!(
                    "{name}: the PDS accepts it, atoauth says {}\n    {document}",
                    unjustified.join("; ")
                ))
            }
        }
        (Err(pds_error), false) if pds_error.starts_with("ACCEPTED") => {
            Outcome::Different(format!("{name}: {pds_error}\n    {document}"))
        }
        (Err(_), false) => Outcome::Refused,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_metadata_is_judged_as_the_pds_judges_it() {
    let pds = pds();
    let key = Es256Key::generate(&OsRandomness).unwrap().with_kid("k1");
    let keyset = Keyset::new([key]).unwrap();
    let jwk = serde_json::to_value(keyset.public_jwk("k1").unwrap()).unwrap();
    let host_url = pds.ready().client_host_url.clone();
    let client = std::sync::Arc::new(Client {
        keyset,
        jwk,
        host: host_url
            .host_str()
            .unwrap()
            .trim_start_matches("clients.")
            .to_owned(),
    });
    let seed = seed();
    eprintln!(
        "client metadata differential: seed {seed:#x} (replay with ATOAUTH_DIFFERENTIAL_SEED={seed:#x})"
    );
    let run = std::process::id();
    let jwks_path = format!("differential-{run}/jwks.json");
    let jwks_url = pds
        .register_client_metadata(&jwks_path, &json!({"keys": [client.jwk]}))
        .await
        .to_string();

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
            "jwks_uri",
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
    let mut rng = Rng(seed);
    for (name, edits) in interplay(&client, &mut rng, 160) {
        corpus.push((format!("public / {name}"), bases[1].1.clone(), edits));
    }
    for (name, edits) in several(&singles, &mut rng, 90) {
        let base = rng.below(bases.len());
        corpus.push((
            format!("{} / {name}", bases[base].0),
            bases[base].1.clone(),
            edits,
        ));
    }
    // Over the size the server reads.
    let mut big = bases[1].1.clone();
    big["client_name"] = json!("x".repeat(MAX_CLIENT_METADATA_BYTES));
    corpus.push(("public / 512 KiB client_name".to_owned(), big, vec![]));
    assert!(corpus.len() >= 450, "only {} documents", corpus.len());

    // Judged four at a time: each is its own client at the PDS.
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut outcomes = Vec::new();
    for (i, (name, base, edits)) in corpus.into_iter().enumerate() {
        let path = format!("differential-{run}/{i}/client-metadata.json");
        let url = pds.ready().client_host_url.join(&path).unwrap();
        let mut document = base;
        document["client_id"] = json!(url.as_str());
        for (member, value) in &edits {
            apply(&mut document, &url, &jwks_url, member, value.as_ref());
        }
        let client = std::sync::Arc::clone(&client);
        tasks.spawn(async move { judge(pds, &client, path, &name, document).await });
        if tasks.len() >= 4 {
            outcomes.push(tasks.join_next().await.unwrap().unwrap());
        }
    }
    while let Some(outcome) = tasks.join_next().await {
        outcomes.push(outcome.unwrap());
    }

    let mut failures = Vec::new();
    let mut justified: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut accepted, mut warned, mut refused) = (0, 0, 0);
    for outcome in &outcomes {
        match outcome {
            Outcome::Accepted { warned: w } => {
                accepted += 1;
                warned += usize::from(*w);
            }
            Outcome::Refused => refused += 1,
            Outcome::Justified(rules) => {
                accepted += 1;
                for rule in rules {
                    *justified.entry(rule).or_default() += 1;
                }
            }
            Outcome::Different(difference) => failures.push(difference.clone()),
        }
    }
    eprintln!(
        "client metadata differential: {} documents in {:?}: {accepted} accepted by the PDS \
         ({warned} with warnings only), {refused} refused by both, refused by atoauth only \
         (justified) {justified:?}",
        outcomes.len(),
        started.elapsed()
    );
    assert!(
        accepted >= 100 && refused >= 100,
        "the corpus must exercise both verdicts"
    );
    assert!(
        failures.is_empty(),
        "{} differences (seed {seed:#x}):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The seed of the combinations: `ATOAUTH_DIFFERENTIAL_SEED` (decimal or `0x…`) or a default.
fn seed() -> u64 {
    std::env::var("ATOAUTH_DIFFERENTIAL_SEED").map_or(0x00c0_ffee, |text| {
        let text = text.trim();
        text.strip_prefix("0x")
            .map_or_else(|| text.parse(), |hex| u64::from_str_radix(hex, 16))
            .unwrap_or_else(|_| panic!("ATOAUTH_DIFFERENTIAL_SEED={text:?} is not a number"))
    })
}
