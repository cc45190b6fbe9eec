//! Account migration (R1–R4) with in-process servers: a PLC directory and three PDSes — two
//! that are their own authorization servers and one behind the first one's (an entryway split).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::{Arc, Mutex};

use atoauth::events::SessionEvent;
use atoauth::syntax::Nsid;
use atoauth::{OAuthError, SessionEndCause};
use support::{ALICE, FakePlc, FakeServer, client_builder, memory_store, sign_in};

fn get_session() -> Nsid {
    Nsid::new("com.atproto.server.getSession").unwrap()
}

struct World {
    plc: FakePlc,
    first: FakeServer,
    second: FakeServer,
    behind_first: FakeServer,
}

async fn world() -> World {
    let world = World {
        plc: FakePlc::start().await,
        first: FakeServer::start().await,
        second: FakeServer::start().await,
        behind_first: FakeServer::start().await,
    };
    let first = world.first.origin();
    world
        .behind_first
        .with(|s| s.authorization_server = Some(first.clone()));
    world.plc.place(ALICE, "alice.example.com", &first);
    world
}

#[tokio::test]
async fn r2_a_move_to_another_authorization_server_ends_the_session_at_the_next_refresh() {
    let world = world().await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let store = memory_store();
    let client = client_builder(&world.plc, &world.first, Arc::clone(&store))
        .on_session_event(Arc::new(move |e: &SessionEvent| {
            sink.lock().unwrap().push(e.clone())
        }))
        .build()
        .unwrap();
    let session = sign_in(&client, ALICE, &world.first, None).await.unwrap();
    session
        .query::<serde_json::Value>(&get_session(), &[])
        .await
        .unwrap();

    world
        .plc
        .place(ALICE, "alice.example.com", &world.second.origin());
    let error = session.refresh().await.unwrap_err();
    let OAuthError::SessionEnded {
        cause: SessionEndCause::AuthorizationServerChanged { was, now },
        ..
    } = &error
    else {
        panic!("{error}");
    };
    assert_eq!(
        (was.as_str(), now.as_str()),
        (
            world.first.origin().as_str(),
            world.second.origin().as_str()
        )
    );
    assert!(error.requires_sign_in());
    assert!(store.list_all().await.unwrap().is_empty());
    assert_eq!(
        world.second.with(|s| s.issued),
        0,
        "no token request to the new server"
    );
    assert!(matches!(
        events.lock().unwrap().last(),
        Some(SessionEvent::Deleted {
            cause: SessionEndCause::AuthorizationServerChanged { .. },
            ..
        })
    ));
}

#[tokio::test]
async fn r3_a_move_to_another_pds_behind_the_same_server_updates_the_session() {
    let world = world().await;
    let store = memory_store();
    let client = client_builder(&world.plc, &world.first, Arc::clone(&store))
        .build()
        .unwrap();
    let session = sign_in(&client, ALICE, &world.first, None).await.unwrap();

    world
        .plc
        .place(ALICE, "alice.example.com", &world.behind_first.origin());
    session.refresh().await.unwrap();
    assert_eq!(
        session.pds().as_str().trim_end_matches('/'),
        world.behind_first.origin()
    );
    let before = world.first.with(|s| s.xrpc_calls);
    session
        .query::<serde_json::Value>(&get_session(), &[])
        .await
        .unwrap();
    assert_eq!(world.behind_first.with(|s| s.xrpc_calls), 1);
    assert_eq!(
        world.first.with(|s| s.xrpc_calls),
        before,
        "never the old PDS"
    );
    let stored = store.list_all().await.unwrap();
    assert_eq!(
        stored[0].pds.as_str().trim_end_matches('/'),
        world.behind_first.origin()
    );
}

#[tokio::test]
async fn o1_entryway_split_calls_go_to_the_pds_never_the_issuer() {
    let world = world().await;
    world
        .plc
        .place(ALICE, "alice.example.com", &world.behind_first.origin());
    let client = client_builder(&world.plc, &world.first, memory_store())
        .build()
        .unwrap();
    let session = sign_in(&client, ALICE, &world.first, None).await.unwrap();
    assert_eq!(session.issuer(), world.first.origin());
    session
        .query::<serde_json::Value>(&get_session(), &[])
        .await
        .unwrap();
    assert_eq!(world.behind_first.with(|s| s.xrpc_calls), 1);
    assert_eq!(world.first.with(|s| s.xrpc_calls), 0);
}
