//! Blob uploads through the session against the official PDS: an image up to the PDS's limit
//! (5 MiB by default) with its Content-Type, embedded in a post that the PDS accepts; one byte
//! over the limit is the PDS's typed refusal; a granular grant without `blob:` is the typed
//! missing scope (permission spec §3.16).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use atoauth::{MemoryStore, OAuthError};
use atoauth_testkit::pds;

const LIMIT: usize = 5 * 1024 * 1024;

/// A PNG as far as content sniffing goes: the signature and an IHDR, then filler.
fn png(size: usize) -> Vec<u8> {
    let mut bytes = vec![
        0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
    ];
    bytes.extend((0..size - bytes.len()).map(|i| (i * 7 % 253) as u8));
    bytes
}

#[tokio::test]
async fn an_image_up_to_the_limit_uploads_with_its_type_and_embeds() {
    let pds = pds();
    let client = pds.loopback_client(
        "atproto transition:generic",
        Arc::new(MemoryStore::default()),
    );
    let session = pds.sign_in(&client, pds.alice()).await;

    let blob = session.upload_blob(png(LIMIT), "image/png").await.unwrap();
    assert_eq!(blob["$type"], "blob");
    assert_eq!(blob["mimeType"], "image/png");
    assert_eq!(blob["size"], LIMIT);

    let small = session
        .upload_blob(png(600 * 1024), "image/png")
        .await
        .unwrap();
    let post: serde_json::Value = session
        .procedure(
            "com.atproto.repo.createRecord",
            &serde_json::json!({
                "repo": session.did(),
                "collection": "app.bsky.feed.post",
                "record": {
                    "$type": "app.bsky.feed.post",
                    "text": "a picture",
                    "createdAt": "2026-12-03T00:00:00Z",
                    "embed": {"$type": "app.bsky.embed.images", "images": [{"alt": "noise", "image": small}]},
                },
            }),
        )
        .await
        .unwrap();
    assert!(post["uri"].as_str().unwrap().starts_with("at://"));

    let error = session
        .upload_blob(png(LIMIT + 1), "image/png")
        .await
        .unwrap_err();
    let OAuthError::Xrpc(refusal) = &error else {
        panic!("the PDS's typed refusal: {error}");
    };
    assert!((400..500).contains(&refusal.status), "{refusal:?}");

    let error = session
        .upload_blob(Vec::new(), "image/png\n")
        .await
        .unwrap_err();
    assert!(matches!(error, OAuthError::InvalidInput { .. }), "{error}");
}

#[tokio::test]
async fn a_grant_without_blob_is_the_typed_missing_scope() {
    let pds = pds();
    let client = pds.loopback_client(
        "atproto repo:app.bsky.feed.post?action=create",
        Arc::new(MemoryStore::default()),
    );
    let session = pds.sign_in(&client, pds.bob()).await;
    assert!(!session.permissions().allows_blob("image/png"));
    let error = session
        .upload_blob(png(1024), "image/png")
        .await
        .unwrap_err();
    let OAuthError::ScopeMissing { permission, .. } = error else {
        panic!("a typed missing scope: {error}");
    };
    assert_eq!(permission.to_string(), "blob:image/png");
}
