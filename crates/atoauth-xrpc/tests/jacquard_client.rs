//! jacquard's `XrpcClient` over an atoauth session, against the official PDS: typed records
//! (`jacquard-api`), a multi-megabyte blob, a post that embeds an image, reading it back,
//! deleting it; an access token expired on purpose costs exactly one refresh and no failed
//! call; a call outside the grant is the typed missing-scope error; a proxied client sends
//! `atproto-proxy`.
#![cfg(feature = "jacquard")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use atoauth::{OAuthError, OAuthSession};
use atoauth_testkit::{RecordingHttp, expire_session, pds};
use atoauth_xrpc::jacquard::{OAuthXrpc, oauth_error};
use jacquard_api::app_bsky::embed::images::{Image, Images};
use jacquard_api::app_bsky::feed::post::{Post, PostEmbed};
use jacquard_api::com_atproto::repo::create_record::CreateRecord;
use jacquard_api::com_atproto::repo::delete_record::DeleteRecord;
use jacquard_api::com_atproto::repo::get_record::GetRecord;
use jacquard_api::com_atproto::repo::upload_blob::UploadBlob;
use jacquard_common::deps::bytes::Bytes;
use jacquard_common::types::blob::BlobRef;
use jacquard_common::types::datetime::Datetime;
use jacquard_common::types::value::{from_data, to_data};
use jacquard_common::xrpc::XrpcClient;

fn post(text: &str, embed: Option<PostEmbed>) -> Post {
    Post {
        created_at: Datetime::now(),
        embed,
        entities: None,
        facets: None,
        labels: None,
        langs: None,
        reply: None,
        tags: None,
        text: text.into(),
        extra_data: None,
    }
}

fn create(session: &OAuthSession, record: &Post) -> CreateRecord {
    CreateRecord {
        collection: "app.bsky.feed.post".parse().unwrap(),
        record: to_data(record).unwrap(),
        repo: session.did().as_str().parse().unwrap(),
        rkey: None,
        swap_commit: None,
        validate: None,
        extra_data: None,
    }
}

fn rkey_of(uri: &str) -> String {
    uri.rsplit('/').next().unwrap().to_owned()
}

fn get(session: &OAuthSession, rkey: &str) -> GetRecord {
    GetRecord {
        cid: None,
        collection: "app.bsky.feed.post".parse().unwrap(),
        repo: session.did().as_str().parse().unwrap(),
        rkey: rkey.parse().unwrap(),
    }
}

fn delete(session: &OAuthSession, rkey: &str) -> DeleteRecord {
    DeleteRecord {
        collection: "app.bsky.feed.post".parse().unwrap(),
        repo: session.did().as_str().parse().unwrap(),
        rkey: rkey.parse().unwrap(),
        swap_commit: None,
        swap_record: None,
        extra_data: None,
    }
}

#[tokio::test]
async fn typed_records_and_blobs_through_the_jacquard_client() {
    let http = RecordingHttp::loopback();
    let (client, store, session) = pds()
        .signed_in("atproto transition:generic", pds().alice(), &http)
        .await;
    let xrpc = OAuthXrpc::new(session.clone());
    // `pds()` ends in `/`; the base URI does not, so jacquard builds `…/xrpc/…`.
    assert_eq!(
        format!("{}/", xrpc.base_uri().await.as_str()),
        session.pds().as_str()
    );

    // A multi-megabyte upload goes through in one piece.
    let big = atoauth_testkit::fixtures::jpeg(4 * 1024 * 1024);
    let uploaded = xrpc
        .send(UploadBlob {
            body: Bytes::from(big.clone()),
        })
        .await
        .unwrap()
        .into_output()
        .unwrap();
    let BlobRef::Blob(blob) = &uploaded.blob;
    assert_eq!(blob.size, big.len());
    assert_eq!(blob.mime_type.as_str(), "image/jpeg");

    // A post that embeds an image.
    let image = xrpc
        .send(UploadBlob {
            body: Bytes::from(atoauth_testkit::fixtures::jpeg(900 * 1024)),
        })
        .await
        .unwrap()
        .into_output()
        .unwrap();
    let embed = PostEmbed::Images(Box::new(Images {
        images: vec![Image {
            alt: "a test image".into(),
            aspect_ratio: None,
            image: image.blob.clone(),
            extra_data: None,
        }],
        extra_data: None,
    }));
    let created = xrpc
        .send(create(&session, &post("with a picture", Some(embed))))
        .await
        .unwrap()
        .into_output()
        .unwrap();
    let rkey = rkey_of(created.uri.as_str());

    // The access token expires mid-test (restored from the store, as a new request would).
    expire_session(store.as_ref(), session.did(), session.session_id()).await;
    let resumed = client
        .restore(session.did(), session.session_id())
        .await
        .unwrap();
    let xrpc = OAuthXrpc::new(resumed);
    let read = xrpc
        .send(get(&session, &rkey))
        .await
        .unwrap()
        .into_output()
        .unwrap();
    let record: Post = from_data(&read.value).unwrap();
    assert_eq!(record.text.as_str(), "with a picture");
    let Some(PostEmbed::Images(read_embed)) = record.embed else {
        panic!("the embed came back");
    };
    assert_eq!(read_embed.images[0].image, image.blob);
    xrpc.send(delete(&session, &rkey))
        .await
        .unwrap()
        .into_output()
        .unwrap();
    assert_eq!(http.successful_grants("refresh_token"), 1);

    // Gone: jacquard's own typed XRPC error, not an atoauth one.
    let response = xrpc.send(get(&session, &rkey)).await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let gone = response.into_output().unwrap_err();
    assert!(gone.to_string().contains("RecordNotFound"), "{gone}");
}

#[tokio::test]
async fn a_call_outside_the_grant_is_the_typed_missing_scope() {
    let http = RecordingHttp::loopback();
    let scope = "atproto repo:app.bsky.feed.post?action=create";
    let (_, _, session) = pds().signed_in(scope, pds().bob(), &http).await;
    let xrpc = OAuthXrpc::new(session.clone());
    let created = xrpc
        .send(create(&session, &post("granted", None)))
        .await
        .unwrap()
        .into_output()
        .unwrap();
    let refused = xrpc
        .send(delete(&session, &rkey_of(created.uri.as_str())))
        .await
        .err()
        .expect("refused");
    let Some(OAuthError::ScopeMissing { permission, .. }) = oauth_error(&refused) else {
        panic!("a typed missing scope: {refused:?}");
    };
    assert_eq!(
        permission.to_string(),
        "repo:app.bsky.feed.post?action=delete"
    );
}

#[tokio::test]
async fn a_proxied_client_sends_the_header_and_a_token_in_the_options_never_goes_out() {
    let http = RecordingHttp::loopback();
    let (_, _, session) = pds()
        .signed_in("atproto transition:generic", pds().carol(), &http)
        .await;
    let carol = session.did().clone();
    let proxied = OAuthXrpc::with_proxy(&session, &carol, "atproto_labeler").unwrap();
    // An app that still sets a bearer token: the session's DPoP token goes out instead.
    let opts = jacquard_common::xrpc::CallOptions {
        auth: Some(jacquard_common::AuthorizationToken::Bearer("stolen".into())),
        ..Default::default()
    };
    proxied.set_opts(opts).await;
    let response = proxied.send(get(&session, "3l4nothere")).await;
    let sent: Vec<_> = http
        .exchanges()
        .into_iter()
        .filter(|e| e.url.ends_with("com.atproto.repo.getRecord"))
        .map(|e| (e.proxy, e.status))
        .collect();
    assert_eq!(sent.len(), 1, "one call: {sent:?}");
    assert_eq!(
        sent[0].0.as_deref(),
        Some(format!("{carol}#atproto_labeler").as_str())
    );
    // The PDS answered for the service it could not find, not a 401 for a bearer token.
    assert_ne!(sent[0].1, Some(401), "{:?}", response.err());
}
