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
