//! Operating `atoauth serve` (issue #15): JSON logs where every line of a request carries its
//! id, the id in the `x-request-id` response header, and a readiness probe that asks the store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use atoauth_testkit::pds;
use common::serve::{Serve, Visitor};
use serde_json::Value;

#[tokio::test]
async fn json_logs_carry_request_ids_and_readyz_asks_the_store() {
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(data.path(), &["--log-format", "json"]);
    let http = atoauth_testkit::http_client();

    let ready = http
        .get(format!("{}/readyz", serve.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.unwrap(), "ready");

    let mut visitor = Visitor::new(&serve.url);
    visitor.sign_in(pds().alice()).await;
    let home = http
        .get(format!("{}/", serve.url))
        .header("cookie", visitor.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    let id = home
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(id.len() >= 12, "{id}");

    // Give the log line a moment to reach stderr.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let logs = serve.logs();
    let lines: Vec<Value> = logs
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!lines.is_empty(), "{logs}");
    let this = lines
        .iter()
        .find(|l| l["span"]["id"] == id.as_str())
        .unwrap_or_else(|| panic!("no line for request {id}:\n{logs}"));
    assert_eq!(this["fields"]["path"], "/");
    assert_eq!(this["fields"]["status"], 200);
    // Every request line has an id, and none of them a query string.
    for line in lines.iter().filter(|l| l["fields"]["message"] == "request") {
        assert!(line["span"]["id"].is_string(), "{line}");
        assert!(
            !line["fields"]["path"].as_str().unwrap().contains('?'),
            "{line}"
        );
    }
}

/// The value of one series in a Prometheus scrape.
fn sample(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{scrape}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn metrics_count_a_sign_in_a_refresh_and_a_proxied_call() {
    use atoauth::store::SessionStore;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data = tempfile::tempdir().unwrap();
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    let serve = Serve::start(
        data.path(),
        &["--metrics-listen", &format!("127.0.0.1:{port}")],
    );
    let http = atoauth_testkit::http_client();
    let scrape = || async {
        let response = http.get(&metrics_url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    };

    // Before any traffic, every series is listed at zero.
    let before = scrape().await;
    for series in [
        r#"atoauth_sign_ins_total{result="ok"}"#,
        r#"atoauth_sign_ins_total{result="denied"}"#,
        r#"atoauth_refreshes_total{result="ok"}"#,
        r#"atoauth_refreshes_total{result="failed"}"#,
        r#"atoauth_sessions_ended_total{cause="refresh_rejected"}"#,
        r#"atoauth_proxied_requests_total{status="2xx"}"#,
        r#"atoauth_upstream_duration_seconds_count{call="xrpc"}"#,
        r#"atoauth_store_duration_seconds_count{op="get_session"}"#,
        "atoauth_active_sessions",
    ] {
        assert_eq!(sample(&before, series), 0.0, "{series}");
    }

    let mut visitor = Visitor::new(&serve.url);
    visitor.sign_in(pds().alice()).await;
    // The access token expires in the store: the next proxied call refreshes first.
    let store = atoauth_sqlx::SqliteStore::open(&data.path().join("atoauth.db"))
        .await
        .unwrap();
    let mut session = store.list_all().await.unwrap().remove(0);
    session.expires_at = Some(session.updated_at - 60);
    store.upsert(&session).await.unwrap();
    let proxied = http
        .get(format!("{}/xrpc/com.atproto.server.getSession", serve.url))
        .header("cookie", visitor.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 200);
    assert_ne!(
        store.list_all().await.unwrap()[0].access_token,
        session.access_token,
        "refreshed"
    );

    let after = scrape().await;
    let count = |series: &str| sample(&after, series);
    assert_eq!(count(r#"atoauth_sign_ins_total{result="ok"}"#), 1.0);
    assert_eq!(count(r#"atoauth_sign_ins_total{result="failed"}"#), 0.0);
    assert_eq!(count(r#"atoauth_refreshes_total{result="ok"}"#), 1.0);
    assert_eq!(
        count(r#"atoauth_proxied_requests_total{status="2xx"}"#),
        1.0
    );
    assert_eq!(
        count(r#"atoauth_proxied_requests_total{status="4xx"}"#),
        0.0
    );
    assert_eq!(
        count(r#"atoauth_upstream_duration_seconds_count{call="xrpc"}"#),
        1.0
    );
    assert_eq!(
        count(r#"atoauth_upstream_duration_seconds_count{call="sign_in_finish"}"#),
        1.0
    );
    assert!(count(r#"atoauth_store_duration_seconds_count{op="get_session"}"#) >= 1.0);
    assert!(count(r#"atoauth_store_duration_seconds_count{op="put_browser"}"#) >= 1.0);
    assert_eq!(count("atoauth_active_sessions"), 1.0);
    assert!(
        !after.contains(pds().alice().did.as_str()) && !after.contains("alice.test"),
        "no account in a label"
    );
}
