use serde_json::json;

use super::*;
use crate::crypto::{Es256Key, SignerBackend};

fn testdata(name: &str) -> Value {
    let path = format!(
        "{}/testdata/oauth-metadata/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The rule ids of the errors (warnings aside).
fn rules(document: &Value) -> Vec<&'static str> {
    let mut rules: Vec<_> = check_client_metadata(document, &ValidationOptions::default())
        .into_iter()
        .filter(Violation::is_error)
        .map(|v| v.rule)
        .collect();
    rules.sort_unstable();
    rules.dedup();
    rules
}

fn public_jwks() -> JwkSet {
    let key = Es256Key::from_secret_bytes(&[3; 32], SignerBackend::P256)
        .unwrap()
        .with_kid("k1");
    JwkSet {
        keys: vec![key.public_jwk().clone().for_signing()],
    }
}

fn web() -> Value {
    json!({
        "client_id": "https://app.example.com/oauth-client-metadata.json",
        "application_type": "web",
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "atproto transition:generic",
        "response_types": ["code"],
        "redirect_uris": ["https://app.example.com/oauth/callback"],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "ES256",
        "dpop_bound_access_tokens": true,
        "jwks": public_jwks(),
        "client_uri": "https://app.example.com",
    })
}

#[test]
fn real_client_documents_validate() {
    for name in [
        "flaskdemo-client-metadata.json",
        "smokesignal-client-metadata.json",
        "statusphere-client-metadata.json",
    ] {
        assert_eq!(rules(&testdata(name)), Vec::<&str>::new(), "{name}");
    }
    for name in ["flaskdemo-jwks.json", "smokesignal-jwks.json"] {
        assert_eq!(check_jwks_document(&testdata(name)), vec![], "{name}");
    }
}

#[test]
fn b_rules_each_reported_with_its_id() {
    assert!(rules(&web()).is_empty(), "{:?}", rules(&web()));
    let cases: Vec<(&str, Value, &str)> = vec![
        ("client_id", json!("http://app.example.com/m.json"), "B1"),
        (
            "client_id",
            json!("https://app.example.com:8443/m.json"),
            "B1",
        ),
        ("client_id", json!("https://app.example.com/"), "B2"),
        ("client_id", json!("https://app.example.com/dir/"), "B2"),
        ("client_id", json!("https://u@app.example.com/m.json"), "B2"),
        ("client_id", json!("https://app.example.com/m.json#x"), "B2"),
        ("client_id", json!("https://192.0.2.1/m.json"), "B2"),
        (
            "client_id",
            json!("https://app.example.com/a/../m.json"),
            "B2",
        ),
        ("client_id", json!("https://clients.test/m.json"), "B2"),
        ("client_id", json!("https://App.example.com/m.json"), "B6.2"),
        ("client_id", json!("HTTPS://app.example.com/m.json"), "B6.2"),
        (
            "client_id",
            json!(" https://app.example.com/m.json"),
            "B6.2",
        ),
        (
            "client_id",
            json!("https://app.example.com:443/m.json"),
            "B6.2",
        ),
        ("application_type", json!("desktop"), "B6.1"),
        ("grant_types", json!(["refresh_token"]), "B5.3"),
        (
            "grant_types",
            json!(["authorization_code", "implicit"]),
            "B5.3",
        ),
        (
            "grant_types",
            json!(["authorization_code", "authorization_code"]),
            "B5.3",
        ),
        ("scope", json!("transition:generic"), "B5.4"),
        ("scope", json!("atproto atproto"), "B5.4"),
        ("response_types", json!(["token"]), "B5.5"),
        ("redirect_uris", json!([]), "B5.6"),
        ("token_endpoint_auth_method", Value::Null, "B5.7"),
        (
            "token_endpoint_auth_method",
            json!("client_secret_basic"),
            "B5.7",
        ),
        ("token_endpoint_auth_signing_alg", json!("none"), "B5.8"),
        ("dpop_bound_access_tokens", json!(false), "B5.9"),
        ("jwks", Value::Null, "B5.10"),
        (
            "jwks_uri",
            json!("https://app.example.com/jwks.json"),
            "B5.10",
        ),
        ("jwks", json!({"keys": []}), "B5.10"),
        ("client_uri", json!("https://other.example.com"), "B5.11"),
        (
            "client_uri",
            json!("https://app.example.com/elsewhere"),
            "B5.11",
        ),
        (
            "logo_uri",
            json!("http://app.example.com/logo.png"),
            "B5.11",
        ),
        ("default_max_age", json!(3600), "B6"),
        ("subject_type", json!("pairwise"), "B6"),
        ("client_secret", json!("s"), "A3"),
    ];
    for (field, value, rule) in cases {
        let mut document = web();
        if value.is_null() {
            document.as_object_mut().unwrap().remove(field);
        } else {
            document[field] = value.clone();
        }
        let found = rules(&document);
        assert!(found.contains(&rule), "{field} = {value}: {found:?}");
    }
}

#[test]
fn b5_8_public_clients_have_no_signing_alg_and_b7_native_is_public() {
    let mut document = web();
    document["token_endpoint_auth_method"] = json!("none");
    assert_eq!(rules(&document), ["B5.8"]);
    let mut document = web();
    document["application_type"] = json!("native");
    document["redirect_uris"] = json!(["com.example.app:/callback"]);
    assert_eq!(rules(&document), ["B7"]);
}

#[test]
fn j1_jwks_keys_need_unique_kids_an_es256_key_and_no_private_part() {
    let key = Es256Key::from_secret_bytes(&[3; 32], SignerBackend::P256).unwrap();
    let mut document = web();
    document["jwks"] = json!({"keys": [key.public_jwk()]});
    assert_eq!(rules(&document), ["J1"]);
    let mut document = web();
    let jwk = key.with_kid("k").to_private_jwk();
    document["jwks"] = json!({"keys": [jwk]});
    assert_eq!(
        rules(&document),
        ["B5.10", "J1"],
        "published, and so not usable either"
    );
    let mut document = web();
    let mut twice = public_jwks();
    twice.keys.push(twice.keys[0].clone());
    document["jwks"] = json!(twice);
    assert_eq!(rules(&document), ["J1"]);
}

#[test]
fn d_rules_for_redirect_uris() {
    let native = |redirects: Value| {
        let mut document = web();
        document["application_type"] = json!("native");
        document["token_endpoint_auth_method"] = json!("none");
        document
            .as_object_mut()
            .unwrap()
            .remove("token_endpoint_auth_signing_alg");
        document.as_object_mut().unwrap().remove("jwks");
        document["client_id"] = json!("https://app.example.com/client.json");
        document["redirect_uris"] = redirects;
        rules(&document)
    };
    assert!(native(json!(["com.example.app:/callback"])).is_empty());
    assert!(
        native(json!([
            "http://127.0.0.1/callback",
            "https://app.example.com/cb"
        ]))
        .is_empty()
    );
    assert_eq!(native(json!(["com.example.app://callback"])), ["D3"]);
    assert_eq!(native(json!(["org.other.app:/callback"])), ["D3"]);
    assert_eq!(native(json!(["myapp:/callback"])), ["D3"]);
    assert_eq!(native(json!(["http://localhost/callback"])), ["D5"]);
    assert_eq!(native(json!(["http://app.example.com/callback"])), ["D5"]);

    let web_with = |redirect: &str| {
        let mut document = web();
        document["redirect_uris"] = json!([redirect]);
        rules(&document)
    };
    assert!(web_with("https://app.example.com:8443/cb").is_empty());
    assert!(
        web_with("https://app.example.com:443/cb").is_empty(),
        "a warning only"
    );
    assert_eq!(web_with("http://127.0.0.1/cb"), ["D5"]);
    assert_eq!(web_with("com.example.app:/cb"), ["D3"]);
    assert_eq!(web_with("https://intranet/cb"), ["B6.2"]);
    assert_eq!(web_with("https://app.test/cb"), ["D5"]);
    assert_eq!(web_with("https://127.0.0.1:8443/cb"), ["B6.2"]);
    assert!(
        web_with("https://App.example.com/cb").is_empty(),
        "accepted, with a warning"
    );
    assert_eq!(web_with("HTTPS://app.example.com/cb"), ["B6.2"]);
    assert_eq!(web_with(" https://app.example.com/cb"), ["B6.2"]);
    assert_eq!(web_with("https://u:p@app.example.com/cb"), ["D5"]);
}

#[test]
fn builder_produces_valid_documents_and_refuses_bad_ones() {
    let metadata = ClientMetadata::builder("https://app.example.com/oauth-client-metadata.json")
        .scope("atproto repo:app.bsky.feed.post?action=create")
        .redirect_uri("https://app.example.com/oauth/callback")
        .private_key_jwt_with_jwks(public_jwks())
        .client_name("Example")
        .build()
        .unwrap();
    assert!(metadata.is_confidential());
    assert_eq!(
        metadata.to_json()["token_endpoint_auth_method"],
        "private_key_jwt"
    );

    let error = ClientMetadata::builder("https://clients.atoauth-interop.internal:4443/c.json")
        .redirect_uri("https://clients.atoauth-interop.internal:4443/cb")
        .build()
        .unwrap_err();
    let found: Vec<_> = error.0.iter().map(|v| v.rule).collect();
    assert_eq!(found, ["B1"], "only the port: .internal is accepted (B6.2)");

    ClientMetadata::builder("https://clients.atoauth-interop.internal:4443/c.json")
        .redirect_uri("https://clients.atoauth-interop.internal:4443/cb")
        .insecure_allow_client_id_port()
        .build()
        .unwrap();
}

#[test]
fn b5_1_client_id_must_equal_the_fetched_url() {
    let options = ValidationOptions {
        fetched_from: Some("https://app.example.com/other.json".into()),
        ..ValidationOptions::default()
    };
    let violations = check_client_metadata(&web(), &options);
    assert!(
        violations.iter().any(|v| v.rule == "B5.1"),
        "{violations:?}"
    );
}

#[test]
fn b6_1_every_registered_member_has_its_type_and_null_is_not_absent() {
    for (field, value) in [
        ("client_name", json!(42)),
        ("jwks", Value::Null),
        ("application_type", Value::Null),
        ("contacts", json!(["not an email"])),
        ("contacts", json!("dev@app.example.com")),
        ("require_auth_time", json!("yes")),
        ("tos_uri", json!(["https://app.example.com/tos"])),
        ("response_types", json!(["code", "codes"])),
        ("scope", json!("atproto  transition:generic")),
        ("scope", json!("atproto transition:generic ")),
    ] {
        let mut document = web();
        document[field] = value.clone();
        assert!(
            rules(&document).contains(&"B6.1"),
            "{field} = {value}: {:?}",
            rules(&document)
        );
    }
}

#[test]
fn what_the_official_server_accepts_is_not_an_error() {
    let mut document = web();
    document["client_uri"] = document["client_id"].clone();
    document["tls_client_certificate_bound_access_tokens"] = json!(false);
    document["authorization_details_types"] = json!([]);
    document["contacts"] = json!(["dev@app.example.com"]);
    document["require_auth_time"] = json!(false);
    assert_eq!(rules(&document), Vec::<&str>::new());
    for host in ["clients.atoauth-interop.internal", "app.in-addr.arpa"] {
        let mut document = web();
        document["client_id"] = json!(format!("https://{host}/m.json"));
        document["redirect_uris"] = json!([format!("https://{host}/cb")]);
        document.as_object_mut().unwrap().remove("client_uri");
        assert_eq!(rules(&document), Vec::<&str>::new(), "{host}");
    }
}

#[test]
fn b6_3_findings_are_warnings() {
    let warnings = |document: &Value| -> Vec<&'static str> {
        check_client_metadata(document, &ValidationOptions::default())
            .into_iter()
            .filter(|v| !v.is_error())
            .map(|v| v.rule)
            .collect()
    };
    let mut document = web();
    document["response_types"] = json!(["code", "code"]);
    document["redirect_uris"] = json!([
        "https://app.example.com/cb#x",
        "https://app.example.com/cb#x"
    ]);
    document["grant_types"] = json!(["authorization_code"]);
    assert_eq!(rules(&document), Vec::<&str>::new());
    assert_eq!(
        warnings(&document),
        ["B6.3", "B6.3", "B6.3", "B6.3", "B6.3"]
    );
    let mut document = web();
    document["token_endpoint_auth_signing_alg"] = json!("ES384");
    assert_eq!(rules(&document), Vec::<&str>::new());
    assert_eq!(warnings(&document), ["B6.3"]);
    let mut document = web();
    document["redirect_uris"] = json!(["https://bücher.example.com/cb"]);
    assert_eq!(rules(&document), Vec::<&str>::new());
    assert_eq!(warnings(&document), ["B6.3"]);
}
