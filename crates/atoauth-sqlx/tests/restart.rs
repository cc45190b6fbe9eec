//! A session survives a restart in SQLite (issue #5): sign in against the official PDS, drop the
//! client and the store, reopen the file in a new `OAuthClient`, call the PDS, sign out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use atoauth::client::{AuthorizeOptions, CallbackParams, OAuthClient};
use atoauth::client_metadata::LoopbackClient;
use atoauth::http::TargetPolicy;
use atoauth::identity::{HandleResolution, IdentityResolver};
use atoauth::session::Revocation;
use atoauth::store::SessionStore;
use atoauth::syntax::Nsid;
use atoauth_sqlx::SqliteStore;
use atoauth_testkit::{Consent, pds};

fn client(store: Arc<SqliteStore>) -> OAuthClient {
    let pds = pds();
    let resolver = IdentityResolver::builder()
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .plc_url(pds.plc_url().clone())
        .handle_resolution(HandleResolution::Service(pds.pds_url().clone()))
        .build()
        .unwrap();
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
        let url = client
            .start_authorization("alice.test", AuthorizeOptions::default())
            .await
            .unwrap();
        let redirect = pds
            .authorize(url.as_str(), pds.alice(), Consent::Accept)
            .await
            .unwrap();
        let session = client
            .complete_authorization(CallbackParams::from_url(&redirect))
            .await
            .unwrap()
            .session;
        store.pool().close().await;
        (session.did().clone(), session.session_id().clone())
    };

    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let client = client(store.clone());
    let session = client.restore(&did, &id).await.unwrap();
    let me = session
        .query(&Nsid::new("com.atproto.server.getSession").unwrap(), &[])
        .await
        .unwrap();
    assert_eq!(me["did"], pds.alice().did.as_str());
    session.refresh().await.unwrap();
    assert_eq!(session.sign_out().await.unwrap(), Revocation::Revoked);
    assert!(store.get(&did, &id).await.unwrap().is_none());
}
