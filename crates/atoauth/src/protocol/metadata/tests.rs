use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use atoauth_testkit::fixtures::authorization_server_metadata as good_server;

use super::*;

const STRICT: TargetPolicy = TargetPolicy::PublicHttpsOnly;

fn testdata(name: &str) -> Value {
    let path = format!(
        "{}/testdata/oauth-metadata/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn real_documents_from_production_validate() {
    let entryway = testdata("bsky-entryway-authorization-server.json");
    let server =
        AuthorizationServerMetadata::parse(&entryway, "https://bsky.social", STRICT).unwrap();
    assert_eq!(
        server.token_endpoint.as_str(),
        "https://bsky.social/oauth/token"
    );
    let indie = testdata("indie-authorization-server.json");
    let indie =
        AuthorizationServerMetadata::parse(&indie, "https://pds.robocracy.org", STRICT).unwrap();
    assert!(indie.lists_resource("https://pds.robocracy.org"));
    for (name, origin, issuer) in [
        (
            "indie-protected-resource.json",
            "https://pds.robocracy.org",
            "https://pds.robocracy.org",
        ),
        (
            "morel-protected-resource.json",
            "https://morel.us-east.host.bsky.network",
            "https://bsky.social",
        ),
    ] {
        let resource = ProtectedResourceMetadata::parse(&testdata(name), origin, STRICT).unwrap();
        assert_eq!(resource.authorization_server, issuer);
    }
}

#[test]
fn f4_each_item_is_reported_separately() {
    let issuer = "https://as.example";
    assert!(AuthorizationServerMetadata::check(&good_server(issuer), issuer, STRICT).is_empty());
    let cases: &[(&str, Value, &str)] = &[
        ("issuer", json!("https://other.example"), "F4.1"),
        ("issuer", json!("https://as.example/"), "F4.1"),
        ("token_endpoint", Value::Null, "F4.2"),
        (
            "authorization_endpoint",
            json!("ftp://as.example/a"),
            "F4.2",
        ),
        ("response_types_supported", json!(["token"]), "F4.3"),
        (
            "grant_types_supported",
            json!(["authorization_code"]),
            "F4.4",
        ),
        ("code_challenge_methods_supported", json!(["plain"]), "F4.5"),
        (
            "token_endpoint_auth_methods_supported",
            json!(["none"]),
            "F4.6",
        ),
        (
            "token_endpoint_auth_signing_alg_values_supported",
            json!(["ES256", "none"]),
            "F4.7",
        ),
        ("scopes_supported", json!(["openid"]), "F4.8"),
        (
            "authorization_response_iss_parameter_supported",
            json!(false),
            "F4.9",
        ),
        (
            "require_pushed_authorization_requests",
            Value::Null,
            "F4.10",
        ),
        (
            "pushed_authorization_request_endpoint",
            Value::Null,
            "F4.10",
        ),
        (
            "dpop_signing_alg_values_supported",
            json!(["ES256K"]),
            "F4.11",
        ),
        ("require_request_uri_registration", json!(false), "F4.12"),
        (
            "client_id_metadata_document_supported",
            Value::Null,
            "F4.13",
        ),
    ];
    for (field, value, rule) in cases {
        let mut document = good_server(issuer);
        if value.is_null() {
            document.as_object_mut().unwrap().remove(*field);
        } else {
            document[*field] = value.clone();
        }
        let violations = AuthorizationServerMetadata::check(&document, issuer, STRICT);
        let mut rules: Vec<_> = violations.iter().map(|v| v.rule).collect();
        rules.dedup();
        assert_eq!(rules, vec![*rule], "{field} = {value}: {violations:?}");
    }
}

#[test]
fn f4_all_violations_at_once() {
    let violations = AuthorizationServerMetadata::check(&json!({}), "https://as.example", STRICT);
    let rules: std::collections::BTreeSet<_> = violations.iter().map(|v| v.rule).collect();
    for rule in [
        "F4.1", "F4.2", "F4.3", "F4.4", "F4.5", "F4.6", "F4.7", "F4.8", "F4.9", "F4.10", "F4.11",
        "F4.13",
    ] {
        assert!(rules.contains(rule), "{rule} missing from {rules:?}");
    }
}

#[test]
fn f1_f2_f3_protected_resource_rules() {
    let origin = "https://pds.example";
    let ok = json!({"resource": origin, "authorization_servers": ["https://as.example"]});
    assert!(ProtectedResourceMetadata::check(&ok, origin, STRICT).is_empty());
    let rules = |document: Value| {
        ProtectedResourceMetadata::check(&document, origin, STRICT)
            .into_iter()
            .map(|v| v.rule)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        rules(json!({"resource": origin, "authorization_servers": []})),
        ["F1"]
    );
    assert_eq!(
        rules(
            json!({"resource": origin, "authorization_servers": ["https://a.example", "https://b.example"]})
        ),
        ["F1"]
    );
    assert_eq!(
        rules(
            json!({"resource": "https://evil.example", "authorization_servers": ["https://as.example"]})
        ),
        ["F2"]
    );
    assert_eq!(
        rules(json!({"resource": origin, "authorization_servers": ["https://as.example/path"]})),
        ["F3"]
    );
    assert_eq!(rules(json!([])), ["F1"]);
}

#[test]
fn f5_resource_must_be_listed_when_a_list_exists() {
    let mut document = good_server("https://as.example");
    document["protected_resources"] = json!(["https://pds.example"]);
    let server =
        AuthorizationServerMetadata::parse(&document, "https://as.example", STRICT).unwrap();
    assert!(server.lists_resource("https://pds.example"));
    assert!(!server.lists_resource("https://other.example"));
}

fn serve(
    documents: Vec<(&'static str, http::StatusCode, &'static str, Value)>,
) -> (Arc<dyn HttpClient>, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    let client = move |request: crate::http::Request| {
        counter.fetch_add(1, Ordering::SeqCst);
        let url = request.uri().to_string();
        let found = documents.iter().find(|(u, ..)| *u == url).cloned();
        async move {
            let (_, status, content_type, body) =
                found.unwrap_or(("", http::StatusCode::NOT_FOUND, "text/plain", Value::Null));
            Ok(http::Response::builder()
                .status(status)
                .header("content-type", content_type)
                .body(serde_json::to_vec(&body).unwrap())
                .unwrap())
        }
    };
    (Arc::new(client), count)
}

#[tokio::test]
async fn discovery_from_a_pds_and_cache() {
    let (http, count) = serve(vec![
        (
            "https://pds.example/.well-known/oauth-protected-resource",
            http::StatusCode::OK,
            "application/json; charset=utf-8",
            json!({"resource": "https://pds.example", "authorization_servers": ["https://as.example"]}),
        ),
        (
            "https://as.example/.well-known/oauth-authorization-server",
            http::StatusCode::OK,
            "application/json",
            good_server("https://as.example"),
        ),
    ]);
    let discovery = Discovery::new(http, STRICT, DEFAULT_METADATA_TTL);
    let pds = Url::parse("https://pds.example").unwrap();
    let found = discovery.for_pds(&pds, false).await.unwrap();
    assert_eq!(found.server.issuer, "https://as.example");
    discovery.for_pds(&pds, false).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 2, "second lookup is cached");
    discovery.for_pds(&pds, true).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 4, "fresh bypasses the cache");
}

#[tokio::test]
async fn f6_server_url_falls_back_to_an_issuer_and_reports_both_failures() {
    let (http, _) = serve(vec![(
        "https://entryway.example/.well-known/oauth-authorization-server",
        http::StatusCode::OK,
        "application/json",
        good_server("https://entryway.example"),
    )]);
    let discovery = Discovery::new(http, STRICT, DEFAULT_METADATA_TTL);
    let found = discovery
        .for_server_url(&Url::parse("https://entryway.example/some/path").unwrap())
        .await
        .unwrap();
    assert!(found.resource.is_none());
    assert_eq!(found.server.issuer, "https://entryway.example");

    let error = discovery
        .for_server_url(&Url::parse("https://nothing.example").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, MetadataError::NotAServer { .. }), "{error}");
}

#[tokio::test]
async fn f1_f4_status_and_content_type_are_enforced() {
    let (http, _) = serve(vec![
        (
            "https://a.example/.well-known/oauth-authorization-server",
            http::StatusCode::CREATED,
            "application/json",
            good_server("https://a.example"),
        ),
        (
            "https://b.example/.well-known/oauth-authorization-server",
            http::StatusCode::OK,
            "text/html",
            good_server("https://b.example"),
        ),
    ]);
    let discovery = Discovery::new(http, STRICT, DEFAULT_METADATA_TTL);
    for issuer in ["https://a.example", "https://b.example"] {
        let error = discovery
            .authorization_server(issuer, false)
            .await
            .unwrap_err();
        assert!(
            matches!(error, MetadataError::BadResponse { rule: "F4", .. }),
            "{error}"
        );
    }
}
