//! A confidential client (`private_key_jwt`, section J) against the official PDS: metadata and
//! JWKS on the harness's HTTPS client host, assertions on PAR, token, refresh and revocation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use atoauth::client::{AuthorizeOptions, CallbackParams, OAuthClient};
use atoauth::client_metadata::ClientMetadata;
use atoauth::events::SessionEvent;
use atoauth::http::{HardenedClient, TargetPolicy};
use atoauth::protocol::client_auth::Keyset;
use atoauth::protocol::crypto::{Es256Key, OsRandomness};
use atoauth::session::Revocation;
use atoauth::store::{MemorySessionStore, SessionStore};
use atoauth::syntax::Nsid;
use atoauth::{OAuthError, SessionEndCause};
use atoauth_testkit::{Consent, RecordingHttp, pds};

const SCOPE: &str = "atproto transition:generic";

fn keyset(kids: &[&str]) -> Keyset {
    Keyset::new(
        kids.iter()
            .map(|kid| Es256Key::generate(&OsRandomness).unwrap().with_kid(*kid)),
    )
    .unwrap()
}

fn metadata(path: &str, keys: &Keyset) -> atoauth::client_metadata::ClientMetadataBuilder {
    let host = pds().ready().client_host_url.clone();
    let client_id = host.join(&format!("{path}/client-metadata.json")).unwrap();
    ClientMetadata::builder(client_id.as_str())
        .scope(SCOPE)
        .redirect_uri(host.join(&format!("{path}/callback")).unwrap().as_str())
        .client_name("atoauth confidential test")
        .private_key_jwt_with_jwks(keys.public_jwks())
}

fn client(
    metadata: ClientMetadata,
    keys: Keyset,
    store: Arc<dyn SessionStore>,
    http: &RecordingHttp,
) -> OAuthClient {
    client_with_events(metadata, keys, store, http, Arc::new(|_: &SessionEvent| {}))
}

fn client_with_events(
    metadata: ClientMetadata,
    keys: Keyset,
    store: Arc<dyn SessionStore>,
    http: &RecordingHttp,
    events: atoauth::events::SessionEventHandler,
) -> OAuthClient {
    let resolver = pds().identity_resolver();
    OAuthClient::builder()
        .metadata(metadata)
        .keyset(keys)
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .insecure_allow_client_id_port()
        .http_client(Arc::new(http.clone()))
        .identity_resolver(resolver)
        .session_store(store)
        .on_session_event(events)
        .build()
        .unwrap()
}

fn recording() -> RecordingHttp {
    RecordingHttp::new(Arc::new(
        HardenedClient::builder()
            .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
            .build()
            .unwrap(),
    ))
}

#[test]
fn b1_the_harness_client_host_is_refused_without_the_insecure_relaxation() {
    let keys = keyset(&["k1"]);
    let violations = metadata("strict", &keys).build().unwrap_err();
    let rules: Vec<_> = violations.0.iter().map(|v| v.rule).collect();
    // Only the port: the official server accepts .internal hosts (B6.2).
    assert_eq!(rules, ["B1"], "a port: {rules:?}");
}

#[tokio::test]
async fn private_key_jwt_on_par_token_refresh_and_revocation() {
    let pds = pds();
    let keys = keyset(&["2026-11-a"]);
    let document = metadata("confidential-1", &keys)
        .insecure_allow_client_id_port()
        .build()
        .unwrap();
    let url = pds
        .register_client_metadata("confidential-1/client-metadata.json", &document.to_json())
        .await;
    assert_eq!(url.as_str(), document.client_id);

    let http = recording();
    let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::default());
    let client = client(document, keys.clone(), Arc::clone(&store), &http);
    assert_eq!(client.public_jwks().unwrap(), keys.public_jwks());
    let authorize_url = client
        .start_authorization("alice.test", AuthorizeOptions::default())
        .await
        .unwrap();
    let redirect = pds
        .authorize(authorize_url.as_str(), pds.alice(), Consent::Accept)
        .await
        .unwrap();
    let session = client
        .complete_authorization(CallbackParams::from_url(&redirect))
        .await
        .unwrap()
        .session;
    assert_eq!(session.snapshot().auth.kid.as_deref(), Some("2026-11-a"));
    let me: serde_json::Value = session
        .query(&Nsid::new("com.atproto.server.getSession").unwrap(), &[])
        .await
        .unwrap();
    assert_eq!(me["did"], pds.alice().did.as_str());
    session.refresh().await.unwrap();
    assert_eq!(session.sign_out().await.unwrap(), Revocation::Revoked);

    // J2: every request to the AS endpoints carried a fresh assertion.
    let to_server: Vec<_> = http
        .exchanges()
        .into_iter()
        .filter(|e| e.method == "POST" && e.path.starts_with("/oauth/"))
        .collect();
    for path in ["/oauth/par", "/oauth/token", "/oauth/revoke"] {
        assert!(
            to_server.iter().any(|e| e.path == path),
            "{path} was called"
        );
    }
    assert!(
        to_server.iter().all(|e| e.client_assertion),
        "{to_server:#?}"
    );
    assert_eq!(http.successful_grants("authorization_code"), 1);
    assert_eq!(http.successful_grants("refresh_token"), 1);
}

#[tokio::test]
async fn j6_a_session_whose_key_was_removed_ends_with_a_typed_cause() {
    let pds = pds();
    let keys = keyset(&["old", "other"]);
    let document = metadata("confidential-2", &keys)
        .insecure_allow_client_id_port()
        .build()
        .unwrap();
    pds.register_client_metadata("confidential-2/client-metadata.json", &document.to_json())
        .await;
    let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::default());
    let first = client(document.clone(), keys, Arc::clone(&store), &recording());
    let url = first
        .start_authorization("bob.test", AuthorizeOptions::default())
        .await
        .unwrap();
    let redirect = pds
        .authorize(url.as_str(), pds.bob(), Consent::Accept)
        .await
        .unwrap();
    let session = first
        .complete_authorization(CallbackParams::from_url(&redirect))
        .await
        .unwrap()
        .session;

    // The app rotates: "old" leaves the keyset (J7). Its sessions end; they are deleted.
    let rotated = keyset(&["new"]);
    let mut document = document;
    document.jwks = Some(rotated.public_jwks());
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let second = client_with_events(
        document,
        rotated,
        Arc::clone(&store),
        &recording(),
        Arc::new(move |e: &SessionEvent| sink.lock().unwrap().push(e.clone())),
    );
    let error = second
        .restore(session.did(), session.session_id())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, OAuthError::SessionEnded { cause: SessionEndCause::KeyRemoved { kid }, .. } if kid == "old"),
        "{error}"
    );
    assert!(store.list_all().await.unwrap().is_empty());
    assert!(
        matches!(
            events.lock().unwrap().as_slice(),
            [SessionEvent::Deleted { cause: SessionEndCause::KeyRemoved { kid }, .. }] if kid == "old"
        ),
        "{events:?}"
    );
}
