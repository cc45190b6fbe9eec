//! The CLI end to end against the official PDS: `login --no-browser` (the test reads the URL
//! from stderr, consents through the testkit and follows the redirect), `whoami --json`, `post`
//! (checked on the PDS), a second account, `refresh`, `logout` (revoked), refused consent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use atoauth_testkit::{Consent, pds};
use common::login::{login, run};
use common::{assert_snapshot, atoauth, json, shape, stderr, stdout};

#[tokio::test]
async fn login_whoami_post_second_account_refresh_logout() {
    let pds = pds();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();

    let (output, err) = login(data, "alice.test", pds.alice(), Consent::Accept, &[]).await;
    assert!(output.status.success(), "{err}");
    assert!(
        err.contains(&format!("Logged in as alice.test ({})", pds.alice().did)),
        "{err}"
    );

    // A new process resumes the session from SQLite.
    let output = run(data, &["whoami", "--json"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let me = json(&output);
    assert_snapshot("whoami", &shape(&me));
    assert_eq!(me["did"], pds.alice().did.as_str());
    assert_eq!(me["handle"], "alice.test");
    assert_eq!(
        me["pds"].as_str().unwrap().trim_end_matches('/'),
        pds.issuer()
    );
    assert_eq!(me["scope"], "atproto repo:app.bsky.feed.post?action=create");
    assert!(me["expires_at"].as_str().unwrap().ends_with('Z'));

    let output = run(data, &["post", "hello from the atoauth CLI"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let uri = stdout(&output).trim().to_owned();
    assert!(
        uri.starts_with(&format!("at://{}/app.bsky.feed.post/", pds.alice().did)),
        "{uri}"
    );
    let (status, record) = pds.get_record(&uri).await;
    assert_eq!(status, 200, "{record}");
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["value"]["text"], "hello from the atoauth CLI");

    // A second account: whoami then needs --as.
    let (output, err) = login(
        data,
        "bob.test",
        pds.bob(),
        Consent::Accept,
        &["--scope", "atproto"],
    )
    .await;
    assert!(output.status.success(), "{err}");
    let output = run(data, &["sessions", "--json"]).await;
    assert_eq!(json(&output).as_array().unwrap().len(), 2);
    assert_snapshot("sessions", &shape(&json(&output)));
    let output = run(data, &["whoami"]).await;
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--as"), "{}", stderr(&output));
    let output = run(data, &["whoami", "--as", "bob.test", "--json"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(json(&output)["did"], pds.bob().did.as_str());

    let output = run(data, &["refresh", "--as", &pds.alice().did]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("expires"), "{}", stdout(&output));
    let output = run(data, &["refresh", "--as", "alice.test", "--json"]).await;
    assert_snapshot("refresh", &shape(&json(&output)));

    // Logout revokes: a copy of the database made before it no longer works afterwards.
    let copy = tempfile::tempdir().unwrap();
    for file in ["atoauth.db", "atoauth.db-wal", "atoauth.db-shm"] {
        let from = data.join(file);
        if from.exists() {
            std::fs::copy(&from, copy.path().join(file)).unwrap();
        }
    }
    let output = run(data, &["logout", "alice.test"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("revoked"), "{}", stdout(&output));
    let output = run(copy.path(), &["whoami", "--as", "alice.test"]).await;
    assert!(!output.status.success(), "the revoked session still works");
    let output = run(data, &["sessions", "--json"]).await;
    let left = json(&output);
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["did"], pds.bob().did.as_str());

    // With one session left, logout needs no argument.
    let output = run(data, &["logout"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let output = run(data, &["whoami"]).await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("not signed in"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn a_refused_consent_fails_with_access_denied_and_keeps_other_sessions() {
    let pds = pds();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (output, err) = login(data, "bob.test", pds.bob(), Consent::Accept, &[]).await;
    assert!(output.status.success(), "{err}");

    let (output, err) = login(data, "bob.test", pds.bob(), Consent::Reject, &[]).await;
    assert!(!output.status.success());
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with("error:") && last.contains("access_denied"),
        "{err}"
    );

    let output = run(data, &["whoami", "--json"]).await;
    assert!(
        output.status.success(),
        "the earlier session survives: {}",
        stderr(&output)
    );
    assert_eq!(json(&output)["did"], pds.bob().did.as_str());
}

/// `login --client-id <https url>`: a published native client (B1–B5, D5: a loopback redirect
/// on 127.0.0.1) on the harness's HTTPS client host, which the CLI reaches only through
/// `--insecure-dev-ca` (the harness's throw-away CA) and `--insecure-dev-resolve`; later
/// commands resume the session with the same client.
#[tokio::test]
async fn login_with_a_published_native_client_id() {
    use atoauth::ClientMetadata;
    use atoauth::client_metadata::ApplicationType;

    let pds = pds();
    let host = pds.ready().client_host_url.clone();
    let client_id = host.join("cli-native/client-metadata.json").unwrap();
    let metadata = ClientMetadata::builder(client_id.as_str())
        .application_type(ApplicationType::Native)
        .scope("atproto transition:generic")
        .redirect_uri("http://127.0.0.1/callback")
        .client_name("atoauth CLI test")
        .insecure_allow_client_id_port()
        .build()
        .unwrap();
    pds.register_client_metadata("cli-native/client-metadata.json", &metadata.to_json())
        .await;
    let ca = pds.client_host_ca();
    let resolve = format!("{}=127.0.0.1", host.host_str().unwrap());
    let trust = [
        "--insecure-dev-ca",
        ca.to_str().unwrap(),
        "--insecure-dev-resolve",
        &resolve,
    ];
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();

    // Without the CA the client host's certificate is not trusted: a clear failure.
    let output = run(
        data,
        &[
            "login",
            "bob.test",
            "--no-browser",
            "--client-id",
            client_id.as_str(),
        ],
    )
    .await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("cannot fetch"),
        "{}",
        stderr(&output)
    );

    let mut extra = vec![
        "--client-id",
        client_id.as_str(),
        "--scope",
        "atproto transition:generic",
    ];
    extra.extend(trust);
    let (output, err) = login(data, "bob.test", pds.bob(), Consent::Accept, &extra).await;
    assert!(output.status.success(), "{err}");
    assert!(err.contains("Logged in as bob.test"), "{err}");

    let mut whoami = vec!["whoami", "--json"];
    whoami.extend(trust);
    let output = run(data, &whoami).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let me = json(&output);
    assert_eq!(me["did"], pds.bob().did.as_str());
    assert_eq!(me["scope"], "atproto transition:generic");

    // The flags exist only for development.
    let output = tokio::process::Command::from({
        let mut command = atoauth();
        command.args(["--insecure-dev-ca", ca.to_str().unwrap(), "whoami"]);
        command
    })
    .output()
    .await
    .unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--insecure-dev"),
        "{}",
        stderr(&output)
    );
}

/// A session that ended elsewhere (its refresh token revoked while this CLI was not looking):
/// `whoami` exits 1 with one line that says to sign in again (issue #21).
#[tokio::test]
async fn an_ended_session_says_sign_in_again_in_one_line() {
    use std::sync::Arc;

    use atoauth::SessionStore;

    let pds = pds();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (output, err) = login(data, "carol.test", pds.carol(), Consent::Accept, &[]).await;
    assert!(output.status.success(), "{err}");

    // Another process refreshes, fails to store the new tokens, and so revokes them (P3): the
    // grant is gone at the PDS while this data dir still holds the older tokens.
    let store = Arc::new(
        atoauth_sqlx::SqliteStore::open(&data.join("atoauth.db"))
            .await
            .unwrap(),
    );
    let session = store.list_all().await.unwrap().remove(0);
    atoauth_testkit::expire_session(store.as_ref(), &session.did, &session.session_id).await;
    let faulty = atoauth_testkit::FaultyStore::new(store.clone());
    faulty.fail_next_upserts(1);
    let other = atoauth::OAuthClient::builder()
        .loopback(
            atoauth::LoopbackClient::with_scope("atproto repo:app.bsky.feed.post?action=create")
                .unwrap(),
        )
        .insecure_local_pds(pds.plc_url().clone(), pds.pds_url().clone())
        .session_store(Arc::new(faulty))
        .build()
        .unwrap();
    let resumed = other
        .restore(&session.did, &session.session_id)
        .await
        .unwrap();
    assert!(resumed.refresh().await.is_err());

    let output = run(data, &["whoami"]).await;
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("warning:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("sign in again"), "{err}");
}

#[cfg(unix)]
#[tokio::test]
async fn login_makes_an_existing_open_data_directory_private_first() {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("shared");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o775)).unwrap();
    // The store opens before the handle is resolved: a bad handle ends the run after it.
    let output = run(&dir, &["login", "not a handle", "--no-browser"]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr
            .matches("could be reached by other users (mode 0775); it is now 0700")
            .count(),
        1,
        "{stderr}"
    );
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{mode:o}");
}
