//! A session survives a restart in SQLite (issue #5): sign in against the official PDS, drop the
//! client and the store, reopen the file in a new `OAuthClient`, call the PDS, sign out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use atoauth::client::OAuthClient;
use atoauth::client_metadata::LoopbackClient;
use atoauth::http::TargetPolicy;
use atoauth::session::Revocation;
use atoauth::store::SessionStore;
use atoauth::syntax::Nsid;
use atoauth_sqlx::SqliteStore;
use atoauth_testkit::pds;

fn client(store: Arc<SqliteStore>) -> OAuthClient {
    let resolver = pds().identity_resolver();
    OAuthClient::builder()
        .loopback(LoopbackClient::new(["http://127.0.0.1/callback"], Some("atproto")).unwrap())
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .identity_resolver(resolver)
        .state_store(store.clone())
        .session_store(store)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_session_resumes_from_sqlite_in_a_new_client() {
    let pds = pds();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    let (did, id) = {
        let store = Arc::new(SqliteStore::open(&path).await.unwrap());
        let client = client(store.clone());
        let session = pds.sign_in(&client, pds.alice()).await;
        store.pool().close().await;
        (session.did().clone(), session.session_id().clone())
    };

    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let client = client(store.clone());
    let session = client.restore(&did, &id).await.unwrap();
    let me: serde_json::Value = session
        .query(&Nsid::new("com.atproto.server.getSession").unwrap(), &[])
        .await
        .unwrap();
    assert_eq!(me["did"], pds.alice().did.as_str());
    session.refresh().await.unwrap();
    assert_eq!(session.sign_out().await.unwrap(), Revocation::Revoked);
    assert!(store.get(&did, &id).await.unwrap().is_none());
}
