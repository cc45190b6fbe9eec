//! atrium's `Agent` over an atoauth session, against the official PDS: typed records, a
//! multi-megabyte blob, a post that embeds an image, reading it back, deleting it; an access
//! token expired on purpose costs exactly one refresh and no failed call; a call outside the
//! grant is the typed missing-scope error; a proxied agent sends `atproto-proxy`.
#![cfg(feature = "atrium")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use atoauth::{OAuthError, OAuthSession};
use atoauth_testkit::{RecordingHttp, expire_session, pds};
use atoauth_xrpc::atrium::{agent, agent_with_proxy, oauth_error};
use atrium_api::app::bsky::embed::images;
use atrium_api::app::bsky::feed::post::{RecordData, RecordEmbedRefs};
use atrium_api::com::atproto::repo::{create_record, delete_record, get_record};
use atrium_api::types::string::{Datetime, Nsid, RecordKey};
use atrium_api::types::{TryFromUnknown, TryIntoUnknown, Union};

fn post(text: &str, embed: Option<images::Main>) -> RecordData {
    RecordData {
        created_at: Datetime::now(),
        embed: embed
            .map(|main| Union::Refs(RecordEmbedRefs::AppBskyEmbedImagesMain(Box::new(main)))),
        entities: None,
        facets: None,
        labels: None,
        langs: None,
        reply: None,
        tags: None,
        text: text.to_owned(),
    }
}

fn create(session: &OAuthSession, record: RecordData) -> create_record::Input {
    create_record::InputData {
        collection: "app.bsky.feed.post".parse().unwrap(),
        record: record.try_into_unknown().unwrap(),
        repo: session.did().as_str().parse().unwrap(),
        rkey: None,
        swap_commit: None,
        validate: None,
    }
    .into()
}

fn rkey_of(uri: &str) -> RecordKey {
    uri.rsplit('/').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn typed_records_and_blobs_through_the_atrium_agent() {
    let http = RecordingHttp::loopback();
    let (client, store, session) = pds()
        .signed_in("atproto transition:generic", pds().alice(), &http)
        .await;
    let agent = agent(session.clone());
    assert_eq!(agent.did().await.unwrap().as_str(), session.did().as_str());
    let repo = &agent.api.com.atproto.repo;

    // A multi-megabyte upload goes through in one piece.
    let big = atoauth_testkit::fixtures::jpeg(4 * 1024 * 1024);
    let uploaded = repo.upload_blob(big.clone()).await.unwrap();
    let atrium_api::types::BlobRef::Typed(atrium_api::types::TypedBlobRef::Blob(blob)) =
        &uploaded.blob
    else {
        panic!("a typed blob ref: {:?}", uploaded.blob);
    };
    assert_eq!(blob.size, big.len());
    let sent = http
        .exchanges()
        .into_iter()
        .find(|e| e.url.ends_with("com.atproto.repo.uploadBlob"))
        .unwrap();
    assert_eq!(sent.body_len, big.len(), "in one piece");
    assert_eq!(blob.mime_type, "image/jpeg");

    // A post that embeds an image (the lexicon allows up to 2 MB per image).
    let image = repo
        .upload_blob(atoauth_testkit::fixtures::jpeg(900 * 1024))
        .await
        .unwrap();
    let embed = images::MainData {
        images: vec![
            images::ImageData {
                alt: "a test image".to_owned(),
                aspect_ratio: None,
                image: image.blob.clone(),
            }
            .into(),
        ],
    };
    let created = repo
        .create_record(create(&session, post("with a picture", Some(embed.into()))))
        .await
        .unwrap();

    // The access token expires mid-test (restored from the store, as a new request would):
    // every following call works, and the whole test costs exactly one refresh.
    expire_session(store.as_ref(), session.did(), session.session_id()).await;
    let resumed = client
        .restore(session.did(), session.session_id())
        .await
        .unwrap();
    let agent = atoauth_xrpc::atrium::agent(resumed);
    let repo = &agent.api.com.atproto.repo;
    let read = repo
        .get_record(
            get_record::ParametersData {
                cid: None,
                collection: "app.bsky.feed.post".parse::<Nsid>().unwrap(),
                repo: session.did().as_str().parse().unwrap(),
                rkey: rkey_of(&created.uri),
            }
            .into(),
        )
        .await
        .unwrap();
    let record = RecordData::try_from_unknown(read.data.value).unwrap();
    assert_eq!(record.text, "with a picture");
    let Some(Union::Refs(RecordEmbedRefs::AppBskyEmbedImagesMain(read_embed))) = record.embed
    else {
        panic!("the embed came back");
    };
    assert_eq!(read_embed.images[0].image, image.blob);
    repo.delete_record(
        delete_record::InputData {
            collection: "app.bsky.feed.post".parse().unwrap(),
            repo: session.did().as_str().parse().unwrap(),
            rkey: rkey_of(&created.uri),
            swap_commit: None,
            swap_record: None,
        }
        .into(),
    )
    .await
    .unwrap();
    assert_eq!(http.successful_grants("refresh_token"), 1);

    // Gone: atrium's own typed XRPC error, not an atoauth one.
    let gone = repo
        .get_record(
            get_record::ParametersData {
                cid: None,
                collection: "app.bsky.feed.post".parse::<Nsid>().unwrap(),
                repo: session.did().as_str().parse().unwrap(),
                rkey: rkey_of(&created.uri),
            }
            .into(),
        )
        .await
        .unwrap_err();
    assert!(oauth_error(&gone).is_none(), "{gone:?}");
    assert!(
        matches!(gone, atrium_xrpc::Error::XrpcResponse(ref e) if e.status == 400),
        "{gone:?}"
    );
}

#[tokio::test]
async fn a_call_outside_the_grant_is_the_typed_missing_scope() {
    let http = RecordingHttp::loopback();
    let scope = "atproto repo:app.bsky.feed.post?action=create";
    let (_, _, session) = pds().signed_in(scope, pds().bob(), &http).await;
    let agent = agent(session.clone());
    let repo = &agent.api.com.atproto.repo;
    let created = repo
        .create_record(create(&session, post("granted", None)))
        .await
        .unwrap();
    let refused = repo
        .delete_record(
            delete_record::InputData {
                collection: "app.bsky.feed.post".parse().unwrap(),
                repo: session.did().as_str().parse().unwrap(),
                rkey: rkey_of(&created.uri),
                swap_commit: None,
                swap_record: None,
            }
            .into(),
        )
        .await
        .unwrap_err();
    let Some(OAuthError::ScopeMissing { permission, .. }) = oauth_error(&refused) else {
        panic!("a typed missing scope: {refused:?}");
    };
    assert_eq!(
        permission.to_string(),
        "repo:app.bsky.feed.post?action=delete"
    );
}

#[tokio::test]
async fn a_proxied_agent_sends_the_header_and_the_pds_answers_for_the_service() {
    let http = RecordingHttp::loopback();
    let (_, _, session) = pds()
        .signed_in("atproto transition:generic", pds().carol(), &http)
        .await;
    let carol: atoauth::Did = session.did().clone();
    let proxied = agent_with_proxy(&session, &carol, "atproto_labeler").unwrap();
    let error = proxied
        .api
        .app
        .bsky
        .actor
        .get_profile(
            atrium_api::app::bsky::actor::get_profile::ParametersData {
                actor: carol.as_str().parse().unwrap(),
            }
            .into(),
        )
        .await
        .unwrap_err();
    // The PDS could not find that service in carol's DID document: its own refusal.
    let atrium_xrpc::Error::XrpcResponse(answer) = &error else {
        panic!("the PDS's answer, not a transport error: {error:?}");
    };
    assert!(answer.status.is_client_error(), "{answer:?}");
    let sent: Vec<_> = http
        .exchanges()
        .into_iter()
        .filter(|e| e.url.contains("app.bsky.actor.getProfile"))
        .map(|e| e.proxy)
        .collect();
    assert_eq!(
        sent,
        [Some(format!("{carol}#atproto_labeler"))],
        "one call, with the header"
    );

    // atrium's own way to the same: Agent::api_with_proxy (CloneWithProxy).
    let plain = agent(session.clone());
    let via_clone = plain.api_with_proxy(carol.as_str().parse().unwrap(), "atproto_labeler");
    let again = via_clone
        .app
        .bsky
        .actor
        .get_profile(
            atrium_api::app::bsky::actor::get_profile::ParametersData {
                actor: carol.as_str().parse().unwrap(),
            }
            .into(),
        )
        .await
        .unwrap_err();
    assert_eq!(format!("{again:?}"), format!("{error:?}"));
}
