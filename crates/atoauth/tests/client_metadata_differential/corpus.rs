//! The corpus of client metadata documents: valid bases (confidential, public, native), single
//! mutations of every member, and seeded combinations of several members at once, including the
//! ones whose rules depend on each other (authentication method, keys, signing algorithm,
//! application type and redirect URIs).

use atoauth::protocol::client_auth::Keyset;
use atoauth::protocol::crypto::{Es256Key, SignerBackend};
use serde_json::{Value, json};
use url::Url;

/// Members to set (or remove, with `None`) on a base document.
pub(crate) type Edits = Vec<(&'static str, Option<Value>)>;

pub(crate) struct Client {
    pub(crate) keyset: Keyset,
    pub(crate) jwk: Value,
    pub(crate) host: String,
}

pub(crate) fn bases(client: &Client) -> Vec<(&'static str, Value)> {
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
pub(crate) fn mutations(client: &Client) -> Vec<(String, &'static str, Option<Value>)> {
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
    add("jwks_uri", vec![one(json!("JWKS_URL"))]);
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
    // Values the first corpus did not try: loopback spellings, custom-scheme shapes, client_uri
    // paths, jwks_uri forms, enum combinations, email shapes.
    add(
        "redirect_uris",
        vec![
            one(json!(["http://[::1]/cb"])),
            one(json!(["http://127.0.0.1:8080/cb"])),
            one(json!(["http://127.0.0.1/cb"])),
            one(json!(["http://localhost/cb"])),
            one(json!(["SCHEME_UPPER:/cb"])),
            one(json!(["SCHEME://cb"])),
            one(json!(["SCHEME:cb"])),
            one(json!(["SCHEME:/cb#frag"])),
            one(json!(["SCHEME:/cb", "http://127.0.0.1/cb"])),
            one(json!(["com.example.other:/cb"])),
            one(json!(["local.app:/cb"])),
            one(json!([format!("{app}/cb?x=1")])),
            one(json!([format!("https://app.{host}:8443/cb")])),
            one(json!(["https://1.2.3.4/cb"])),
            one(json!(["https://[2001:db8::1]/cb"])),
            one(json!(["https://app.internal/cb"])),
        ],
    );
    add(
        "client_uri",
        vec![
            one(json!("PARENT")),
            one(json!("OTHER_PATH")),
            one(json!("CLIENT_ID_CHILD")),
            one(json!(format!("https://other.{host}/"))),
        ],
    );
    add(
        "jwks_uri",
        vec![
            one(json!("JWKS_URL")),
            // Not served: the server cannot fetch it.
            one(json!(format!("{app}/jwks.json"))),
            one(json!("not a url")),
            one(json!("http://127.0.0.1/jwks.json")),
            one(json!("https://localhost/jwks.json")),
            one(json!(5)),
        ],
    );
    add(
        "response_types",
        vec![
            one(json!(["code", "none"])),
            one(json!(["code id_token"])),
            one(json!(["code", "code id_token"])),
        ],
    );
    add(
        "grant_types",
        vec![one(json!(["refresh_token", "authorization_code"]))],
    );
    add(
        "contacts",
        vec![
            one(json!(["a@x-.com"])),
            one(json!(["a@b.c"])),
            one(json!(["dev@app.atoauth.io", "x"])),
            one(json!(["a'b@x.io"])),
            one(json!(["dev@localhost"])),
        ],
    );
    add(
        "scope",
        vec![
            one(json!("atproto repo:*")),
            one(json!("include:com.example.set atproto")),
            one(json!("atproto atproto:x")),
            one(json!("")),
        ],
    );
    add("client_name", vec![one(json!("é 🦋"))]);
    add(
        "authorization_signed_response_alg",
        vec![one(json!(5)), one(json!("RS256"))],
    );
    add(
        "authorization_encrypted_response_alg",
        vec![one(json!("x"))],
    );
    add("request_object_signing_alg", vec![one(json!("none"))]);
    add(
        "tos_uri",
        vec![
            one(json!("http://localhost/tos")),
            one(json!("https://app.test/tos")),
            one(json!("https://x.local/tos")),
        ],
    );
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
pub(crate) fn apply(
    document: &mut Value,
    url: &Url,
    jwks_url: &str,
    member: &str,
    value: Option<&Value>,
) {
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
        ("client_uri", Some(Value::String(s))) if s == "PARENT" => {
            object.insert(member.into(), json!(url.join("./").unwrap().as_str()));
        }
        ("client_uri", Some(Value::String(s))) if s == "OTHER_PATH" => {
            object.insert(member.into(), json!(url.join("/other/").unwrap().as_str()));
        }
        ("client_uri", Some(Value::String(s))) if s == "CLIENT_ID_CHILD" => {
            object.insert(member.into(), json!(format!("{client_id}/more")));
        }
        ("jwks_uri", Some(Value::String(s))) if s == "JWKS_URL" => {
            object.insert(member.into(), json!(jwks_url));
        }
        ("redirect_uris", Some(Value::Array(uris))) => {
            // SCHEME: the client_id host reversed (D3); SCHEME_UPPER: the same in capitals.
            let scheme = reversed(url.host_str().unwrap());
            let uris: Vec<Value> = uris
                .iter()
                .map(|uri| match uri.as_str() {
                    Some(uri) => json!(
                        uri.replace("SCHEME_UPPER", &scheme.to_ascii_uppercase())
                            .replace("SCHEME", &scheme)
                    ),
                    None => uri.clone(),
                })
                .collect();
            object.insert(member.into(), Value::Array(uris));
        }
        (_, Some(value)) => {
            object.insert(member.into(), value.clone());
        }
    }
}

/// `host` with its labels in reverse order (a custom scheme, D3).
fn reversed(host: &str) -> String {
    host.split('.').rev().collect::<Vec<_>>().join(".")
}

/// SplitMix64, seeded: the combinations are reproducible.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        usize::try_from((z ^ (z >> 31)) % n as u64).unwrap()
    }
}

/// The members whose rules depend on each other, combined: authentication method, keys, signing
/// algorithm, application type and redirect URIs, on the public base.
pub(crate) fn interplay(client: &Client, rng: &mut Rng, count: usize) -> Vec<(String, Edits)> {
    let private = Es256Key::from_secret_bytes(&[7; 32], SignerBackend::P256)
        .unwrap()
        .with_kid("leaked")
        .to_private_jwk();
    let k = client.jwk.clone();
    let methods = [Some(json!("none")), Some(json!("private_key_jwt")), None];
    let keys: [(&str, Option<Value>, Option<Value>); 7] = [
        ("no keys", None, None),
        ("jwks", Some(json!({"keys": [&k]})), None),
        ("private jwks", Some(json!({"keys": [private]})), None),
        ("jwks keys not a list", Some(json!({"keys": "x"})), None),
        ("jwks_uri", None, Some(json!("JWKS_URL"))),
        ("bad jwks_uri", None, Some(json!("not a url"))),
        (
            "jwks and jwks_uri",
            Some(json!({"keys": [k]})),
            Some(json!("JWKS_URL")),
        ),
    ];
    let algs = [
        None,
        Some(json!("ES256")),
        Some(json!("ES384")),
        Some(json!("none")),
    ];
    let apps = [Some(json!("web")), Some(json!("native")), None];
    let redirects = [
        json!([format!("https://app.{}/cb", client.host)]),
        json!(["SCHEME:/cb"]),
        json!(["http://127.0.0.1/cb"]),
        json!(["http://[::1]/cb", "SCHEME:/cb"]),
    ];
    (0..count)
        .map(|_| {
            let method = methods[rng.below(methods.len())].clone();
            let (keys_name, jwks, jwks_uri) = keys[rng.below(keys.len())].clone();
            let alg = algs[rng.below(algs.len())].clone();
            let app = apps[rng.below(apps.len())].clone();
            let redirect = redirects[rng.below(redirects.len())].clone();
            let name = format!(
                "method {method:?} + {keys_name} + alg {alg:?} + application_type {app:?} + redirect {redirect}"
            );
            let edits: Edits = vec![
                ("token_endpoint_auth_method", method),
                ("jwks", jwks),
                ("jwks_uri", jwks_uri),
                ("token_endpoint_auth_signing_alg", alg),
                ("application_type", app),
                ("redirect_uris", Some(redirect)),
            ];
            (name, edits)
        })
        .collect()
}

/// Two to four single mutations of different members at once.
pub(crate) fn several(
    singles: &[(String, &'static str, Option<Value>)],
    rng: &mut Rng,
    count: usize,
) -> Vec<(String, Edits)> {
    (0..count)
        .map(|_| {
            let mut picked: Vec<&(String, &'static str, Option<Value>)> = Vec::new();
            for _ in 0..2 + rng.below(3) {
                let candidate = &singles[rng.below(singles.len())];
                if picked.iter().all(|p| p.1 != candidate.1) {
                    picked.push(candidate);
                }
            }
            let name = picked
                .iter()
                .map(|p| p.0.as_str())
                .collect::<Vec<_>>()
                .join(" + ");
            let edits = picked.iter().map(|p| (p.1, p.2.clone())).collect();
            (name, edits)
        })
        .collect()
}
