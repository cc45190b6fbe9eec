//! The whole OAuth flow against the official PDS (issue #5): the public development client,
//! partial consent, refused consent, the wrong account, login from a server URL, callbacks that
//! must be refused, and sessions that survive a new `OAuthClient`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use atoauth::client::{AuthorizeOptions, CallbackParams, OAuthClient};
use atoauth::client_metadata::LoopbackClient;
use atoauth::http::{HardenedClient, TargetPolicy};
use atoauth::scope::RepoAction;
use atoauth::session::CompletedAuthorization;
use atoauth::session::Revocation;
use atoauth::store::{MemorySessionStore, SessionStore};
use atoauth::syntax::{Did, Nsid};
use atoauth::{OAuthError, SessionEndCause};
use atoauth_testkit::{Account, Consent, RecordingHttp, pds};
use serde_json::json;

const SCOPE: &str = "atproto repo:app.bsky.feed.post?action=create account:email";
const REDIRECT: &str = "http://127.0.0.1:41234/callback";

fn recording_http() -> RecordingHttp {
    let http = HardenedClient::builder()
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .build()
        .unwrap();
    RecordingHttp::new(Arc::new(http))
}

fn dev_client_with(sessions: Arc<dyn SessionStore>, http: &RecordingHttp) -> OAuthClient {
    let loopback = LoopbackClient::new(["http://127.0.0.1/callback"], Some(SCOPE)).unwrap();
    OAuthClient::builder()
        .loopback(loopback)
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .http_client(Arc::new(http.clone()))
        .identity_resolver(pds().identity_resolver())
        .session_store(sessions)
        .build()
        .unwrap()
}

fn dev_client(sessions: Arc<dyn SessionStore>) -> OAuthClient {
    dev_client_with(sessions, &recording_http())
}

async fn start(client: &OAuthClient, input: &str, scope: &str) -> String {
    client
        .start_authorization(
            input,
            AuthorizeOptions::default()
                .scope(scope)
                .redirect_uri(REDIRECT)
                .app_state("return-to=/feed"),
        )
        .await
        .unwrap()
        .to_string()
}

async fn sign_in(
    client: &OAuthClient,
    input: &str,
    account: &Account,
    consent: Consent,
) -> Result<CompletedAuthorization, OAuthError> {
    let url = start(client, input, SCOPE).await;
    let redirect = pds().authorize(&url, account, consent).await.unwrap();
    assert!(redirect.as_str().starts_with(REDIRECT), "{redirect}");
    client
        .complete_authorization(CallbackParams::from_url(&redirect))
        .await
}

fn nsid(s: &str) -> Nsid {
    Nsid::new(s).unwrap()
}

async fn create_post(
    session: &atoauth::session::OAuthSession,
    text: &str,
) -> Result<serde_json::Value, OAuthError> {
    session
        .procedure(
            &nsid("com.atproto.repo.createRecord"),
            &json!({
                "repo": session.did().as_str(),
                "collection": "app.bsky.feed.post",
                "record": {"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-11-28T00:00:00Z"},
            }),
        )
        .await
}

#[tokio::test]
async fn public_dev_client_signs_in_calls_refreshes_restores_and_signs_out() {
    let pds = pds();
    let alice = pds.alice();
    let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::default());
    let http = recording_http();
    let client = dev_client_with(Arc::clone(&store), &http);
    let done = sign_in(&client, "@alice.test", alice, Consent::Accept)
        .await
        .unwrap();
    assert_eq!(done.app_state.as_deref(), Some("return-to=/feed"));
    let session = done.session;
    assert_eq!(session.did().as_str(), alice.did);
    assert_eq!(session.handle().unwrap().as_str(), "alice.test");
    // O1: the PDS from the DID document, not the issuer string (here they share an origin).
    assert_eq!(session.pds().as_str().trim_end_matches('/'), pds.issuer());

    let me: serde_json::Value = session
        .query(&nsid("com.atproto.server.getSession"), &[])
        .await
        .unwrap();
    assert_eq!(me["did"], alice.did.as_str());
    let created = create_post(&session, "hello from atoauth").await.unwrap();
    assert!(created["uri"].as_str().unwrap().starts_with("at://"));

    // A forced refresh rotates both tokens; the new access token works at once.
    let before = session.snapshot();
    session.refresh().await.unwrap();
    let after = session.snapshot();
    assert_ne!(before.access_token, after.access_token);
    assert_ne!(before.refresh_token, after.refresh_token);
    assert_eq!(http.successful_grants("refresh_token"), 1);
    assert_eq!(
        store
            .get(session.did(), session.session_id())
            .await
            .unwrap()
            .unwrap(),
        after
    );
    session
        .query::<serde_json::Value>(&nsid("com.atproto.server.getSession"), &[])
        .await
        .unwrap();

    // A restart: a new client over the same store resumes the session.
    let restarted = dev_client(Arc::clone(&store));
    let resumed = restarted
        .restore(session.did(), session.session_id())
        .await
        .unwrap();
    let me: serde_json::Value = resumed
        .query(&nsid("com.atproto.server.getSession"), &[])
        .await
        .unwrap();
    assert_eq!(me["handle"], "alice.test");

    // Sign-out revokes at the server and deletes locally; the old handle then fails.
    assert_eq!(resumed.sign_out().await.unwrap(), Revocation::Revoked);
    assert!(
        store
            .get(session.did(), session.session_id())
            .await
            .unwrap()
            .is_none()
    );
    let error = session
        .query::<serde_json::Value>(&nsid("com.atproto.server.getSession"), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            OAuthError::SessionNotFound { .. } | OAuthError::SessionEnded { .. }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn partial_consent_shows_in_permissions_and_a_missing_scope_is_typed() {
    let pds = pds();
    let client = dev_client(Arc::new(MemorySessionStore::default()));
    let granted = "atproto repo:app.bsky.feed.post?action=create";
    let session = sign_in(
        &client,
        "alice.test",
        pds.alice(),
        Consent::AcceptScope(granted.into()),
    )
    .await
    .unwrap()
    .session;
    assert_eq!(session.granted_scope().to_string(), granted);
    let permissions = session.permissions();
    let post = nsid("app.bsky.feed.post");
    assert!(permissions.allows_repo(&post, RepoAction::Create));
    assert!(!permissions.allows_repo(&post, RepoAction::Delete));
    let diff = session.scope_diff();
    assert!(!diff.is_complete());
    assert_eq!(
        diff.missing
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["account:email"]
    );

    let created = create_post(&session, "partial").await.unwrap();
    let rkey = created["uri"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let error = session
        .procedure::<_, serde_json::Value>(
            &nsid("com.atproto.repo.deleteRecord"),
            &json!({"repo": session.did().as_str(), "collection": "app.bsky.feed.post", "rkey": rkey}),
        )
        .await
        .unwrap_err();
    let OAuthError::ScopeMissing { permission, .. } = error else {
        panic!("expected a missing scope, got {error}");
    };
    assert_eq!(
        permission.to_string(),
        "repo:app.bsky.feed.post?action=delete"
    );
}

#[tokio::test]
async fn a_refused_consent_is_a_typed_access_denied_with_the_app_state() {
    let pds = pds();
    let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::default());
    let client = dev_client(Arc::clone(&store));
    let error = sign_in(&client, "alice.test", pds.alice(), Consent::Reject)
        .await
        .unwrap_err();
    assert_eq!(error.oauth_error_code(), Some("access_denied"), "{error}");
    let OAuthError::AuthorizationFailed { app_state, .. } = error else {
        panic!("{error}");
    };
    assert_eq!(app_state.as_deref(), Some("return-to=/feed"));
    assert!(store.list_all().await.unwrap().is_empty());
}

#[tokio::test]
async fn f6_login_from_the_pds_url_proves_authority_afterwards() {
    let pds = pds();
    let client = dev_client(Arc::new(MemorySessionStore::default()));
    let session = sign_in(&client, pds.pds_url().as_str(), pds.bob(), Consent::Accept)
        .await
        .unwrap()
        .session;
    assert_eq!(session.did().as_str(), pds.bob().did);
}

#[tokio::test]
async fn l3_a_flow_for_alice_that_returns_bob_is_refused() {
    let pds = pds();
    let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::default());
    let http = recording_http();
    let client = dev_client_with(Arc::clone(&store), &http);
    let url = start(&client, &pds.alice().did, SCOPE).await;
    // The user signs in as bob although the flow (and its login_hint) named alice.
    // The official PDS 0.5.35 lets bob sign in despite the login_hint (verified); the client
    // is what must refuse the result.
    let redirect = pds
        .authorize(&url, pds.bob(), Consent::Accept)
        .await
        .expect("the PDS lets another account sign in; if it stops, move this to a fake AS");
    let error = client
        .complete_authorization(CallbackParams::from_url(&redirect))
        .await
        .unwrap_err();
    let OAuthError::SubjectMismatch { expected, actual } = error else {
        panic!("{error}");
    };
    assert_eq!(expected.as_str(), pds.alice().did);
    assert_eq!(actual.as_str(), pds.bob().did);
    assert!(store.list_all().await.unwrap().is_empty());
    // L5: the tokens issued for bob were revoked at the server.
    assert_eq!(http.successful_grants("authorization_code"), 1);
    assert_eq!(
        http.successes("/oauth/revoke"),
        1,
        "{:#?}",
        http.exchanges()
    );
}

#[tokio::test]
async fn k2_k4_replayed_and_forged_callbacks_are_refused() {
    let pds = pds();
    let client = dev_client(Arc::new(MemorySessionStore::default()));
    let url = start(&client, "alice.test", SCOPE).await;
    let redirect = pds
        .authorize(&url, pds.alice(), Consent::Accept)
        .await
        .unwrap();
    let params = CallbackParams::from_url(&redirect);

    // K4: a different `iss` is refused (and consumes the state).
    let mut forged = params.clone();
    forged.iss = Some("https://evil.example".into());
    let error = client.complete_authorization(forged).await.unwrap_err();
    assert!(
        matches!(error, OAuthError::Callback { rule: "K4", .. }),
        "{error}"
    );

    // K2: the state is single-use, so the genuine callback now fails too.
    let error = client.complete_authorization(params).await.unwrap_err();
    assert!(
        matches!(error, OAuthError::Callback { rule: "K2", .. }),
        "{error}"
    );

    // K2: an unknown state.
    let error = client
        .complete_authorization(CallbackParams::from_query("state=nope&code=x&iss=y"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OAuthError::Callback { rule: "K2", .. }),
        "{error}"
    );
}

#[tokio::test]
async fn l8_a_new_sign_in_can_replace_the_old_session() {
    let pds = pds();
    let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::default());
    let loopback = LoopbackClient::new(["http://127.0.0.1/callback"], Some(SCOPE)).unwrap();
    let client = OAuthClient::builder()
        .loopback(loopback)
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .identity_resolver(pds.identity_resolver())
        .session_store(Arc::clone(&store))
        .replace_existing_sessions()
        .build()
        .unwrap();
    let first = sign_in(&client, "bob.test", pds.bob(), Consent::Accept)
        .await
        .unwrap()
        .session;
    let second = sign_in(&client, "bob.test", pds.bob(), Consent::Accept)
        .await
        .unwrap()
        .session;
    let did = Did::new(&pds.bob().did).unwrap();
    let left = store.list_by_did(&did).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(&left[0].session_id, second.session_id());
    let error = first
        .query::<serde_json::Value>(&nsid("com.atproto.server.getSession"), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            OAuthError::SessionNotFound { .. }
                | OAuthError::SessionEnded {
                    cause: SessionEndCause::TokenRejected,
                    ..
                }
        ),
        "{error}"
    );
}
