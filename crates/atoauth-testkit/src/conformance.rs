//! One conformance suite for every store (memory, SQLite, and the shared backends): each test
//! file calls these functions on its own store. They check the written contracts of
//! [`StateStore`] and [`SessionStore`], including concurrent use.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use atoauth::client_metadata::TokenEndpointAuthMethod;
use atoauth::protocol::crypto::{Es256Key, OsRandomness};
use atoauth::secret::{AccessToken, CodeVerifier, RefreshToken, SessionId, State};
use atoauth::store::{
    ClientAuthBinding, PendingAuthorization, SessionData, SessionStore, StateStore, StoreError,
};
use atoauth::syntax::Did;

/// A pending authorization with every field set.
///
/// # Panics
/// Only if key generation fails.
pub fn sample_pending(app_state: &str) -> PendingAuthorization {
    PendingAuthorization {
        issuer: "https://auth.example.com".to_owned(),
        client_id: "http://localhost".to_owned(),
        dpop_key: Es256Key::generate(&OsRandomness)
            .expect("a key")
            .to_private_jwk(),
        dpop_nonce: Some("nonce".to_owned()),
        code_verifier: CodeVerifier::new("v".repeat(43)),
        redirect_uri: "http://127.0.0.1/callback".to_owned(),
        auth: ClientAuthBinding {
            method: TokenEndpointAuthMethod::None,
            kid: None,
        },
        scope: "atproto".to_owned(),
        expanded_scope: None,
        expected_did: Did::new("did:plc:ewvi7nxzyoun6zhxrhs64oiz").ok(),
        app_state: Some(app_state.to_owned()),
        created_at: 1,
        expires_at: i64::MAX,
    }
}

/// A session of `did` with id `id`.
///
/// # Panics
/// On an invalid DID or if key generation fails.
pub fn sample_session(did: &str, id: &str) -> SessionData {
    SessionData {
        did: Did::new(did).expect("a valid DID"),
        session_id: SessionId::new(id),
        handle: None,
        issuer: "https://auth.example.com".to_owned(),
        pds: url::Url::parse("https://pds.example.com").expect("a URL"),
        client_id: "http://localhost".to_owned(),
        auth: ClientAuthBinding {
            method: TokenEndpointAuthMethod::PrivateKeyJwt,
            kid: Some("k1".to_owned()),
        },
        scope: "atproto transition:generic".to_owned(),
        requested_scope: "atproto transition:generic".to_owned(),
        access_token: AccessToken::new(format!("at-{id}")),
        refresh_token: Some(RefreshToken::new(format!("rt-{id}"))),
        expires_at: Some(1_800_000_000),
        dpop_key: Es256Key::generate(&OsRandomness)
            .expect("a key")
            .to_private_jwk(),
        dpop_nonces: BTreeMap::from([("https://pds.example.com".to_owned(), "n".to_owned())]),
        created_at: 1,
        updated_at: 2,
    }
}

/// The [`StateStore`] contract: create-only, single-use take, TTL expiry, concurrent takes.
///
/// # Panics
/// When the store breaks the contract.
pub async fn state_store_contract(store: Arc<dyn StateStore>) {
    let state = State::new(format!("state-{}", nonce()));
    let pending = sample_pending("one");
    store
        .create(&state, &pending, Duration::from_secs(600))
        .await
        .expect("create");
    assert!(
        matches!(
            store
                .create(&state, &sample_pending("two"), Duration::from_secs(600))
                .await,
            Err(StoreError::Conflict)
        ),
        "create must never overwrite"
    );
    assert_eq!(store.take(&state).await.expect("take"), Some(pending));
    assert_eq!(store.take(&state).await.expect("take"), None, "single use");
    assert_eq!(
        store
            .take(&State::new("never-created"))
            .await
            .expect("take"),
        None
    );

    // TTL: an entry whose lifetime is over is never returned.
    let expired = State::new(format!("expired-{}", nonce()));
    store
        .create(&expired, &sample_pending("old"), Duration::ZERO)
        .await
        .expect("create");
    assert_eq!(store.take(&expired).await.expect("take"), None, "expired");

    // Concurrent takes: exactly one wins.
    let raced = State::new(format!("raced-{}", nonce()));
    store
        .create(&raced, &sample_pending("race"), Duration::from_secs(600))
        .await
        .expect("create");
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = Arc::clone(&store);
        let raced = raced.clone();
        tasks.push(tokio::spawn(async move { store.take(&raced).await }));
    }
    let mut winners = 0;
    for task in tasks {
        if task.await.expect("task").expect("take").is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "take is atomic");
}

/// The [`SessionStore`] contract: get, upsert (replace), delete, list by DID, list all, and
/// concurrent writers.
///
/// # Panics
/// When the store breaks the contract.
pub async fn session_store_contract(store: Arc<dyn SessionStore>) {
    let alice = "did:plc:alicealicealicealicealic";
    let bob = "did:plc:bobbobbobbobbobbobbobbob";
    let a1 = sample_session(alice, &format!("a1-{}", nonce()));
    let a2 = sample_session(alice, &format!("a2-{}", nonce()));
    let b1 = sample_session(bob, &format!("b1-{}", nonce()));
    assert_eq!(store.get(&a1.did, &a1.session_id).await.expect("get"), None);
    for session in [&a1, &a2, &b1] {
        store.upsert(session).await.expect("upsert");
    }
    assert_eq!(
        store.get(&a1.did, &a1.session_id).await.expect("get"),
        Some(a1.clone())
    );

    let mut replaced = a1.clone();
    replaced.access_token = AccessToken::new("at-new");
    replaced.refresh_token = Some(RefreshToken::new("rt-new"));
    replaced.updated_at = 3;
    store.upsert(&replaced).await.expect("upsert");
    assert_eq!(
        store.get(&a1.did, &a1.session_id).await.expect("get"),
        Some(replaced.clone())
    );

    let mut of_alice = store.list_by_did(&a1.did).await.expect("list");
    of_alice.sort_by(|x, y| x.session_id.secret().cmp(y.session_id.secret()));
    let mut expected = vec![replaced, a2.clone()];
    expected.sort_by(|x, y| x.session_id.secret().cmp(y.session_id.secret()));
    assert_eq!(of_alice, expected);
    let all = store.list_all().await.expect("list all");
    assert!(all.contains(&b1) && all.len() >= 3);
    assert_eq!(store.count().await.expect("count"), all.len());

    assert!(store.delete(&a2.did, &a2.session_id).await.expect("delete"));
    assert!(!store.delete(&a2.did, &a2.session_id).await.expect("delete"));
    assert_eq!(store.get(&a2.did, &a2.session_id).await.expect("get"), None);

    // Concurrent writers do not lose each other's rows.
    let carol = "did:plc:carolcarolcarolcarolcaro";
    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store.upsert(&sample_session(carol, &format!("c{i}"))).await
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("concurrent upsert");
    }
    let did = Did::new(carol).expect("a DID");
    assert_eq!(store.list_by_did(&did).await.expect("list").len(), 24);
}

fn nonce() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// The [`BrowserSessionStore`](atoauth::store::BrowserSessionStore) contract: put/replace, get,
/// delete, TTL expiry, and keys that are not the cookie ids.
///
/// # Panics
/// When the store breaks the contract.
pub async fn browser_store_contract(store: Arc<dyn atoauth::store::BrowserSessionStore>) {
    use atoauth::store::BrowserSession;
    let id = SessionId::new(format!("browser-{}", nonce()));
    let anonymous = BrowserSession {
        csrf_token: State::new("csrf-1"),
        accounts: Vec::new(),
        created_at: 1,
    };
    assert_eq!(store.get_browser(&id).await.expect("get"), None);
    store
        .put_browser(&id, &anonymous, Duration::from_secs(600))
        .await
        .expect("put");
    assert_eq!(
        store.get_browser(&id).await.expect("get"),
        Some(anonymous.clone())
    );
    let signed_in = BrowserSession {
        accounts: vec![
            (
                Did::new("did:plc:ewvi7nxzyoun6zhxrhs64oiz").expect("a DID"),
                SessionId::new("s1"),
            ),
            (
                Did::new("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb").expect("a DID"),
                SessionId::new("s2"),
            ),
        ],
        ..anonymous
    };
    store
        .put_browser(&id, &signed_in, Duration::from_secs(600))
        .await
        .expect("replace");
    assert_eq!(
        store.get_browser(&id).await.expect("get"),
        Some(signed_in.clone())
    );
    store.delete_browser(&id).await.expect("delete");
    assert_eq!(store.get_browser(&id).await.expect("get"), None);
    store
        .delete_browser(&id)
        .await
        .expect("deleting twice is fine");

    let expired = SessionId::new(format!("expired-{}", nonce()));
    store
        .put_browser(&expired, &signed_in, Duration::ZERO)
        .await
        .expect("put");
    assert_eq!(
        store.get_browser(&expired).await.expect("get"),
        None,
        "expired"
    );
}

/// How a lock ends when its holder vanishes without releasing it.
#[derive(Clone, Copy, Debug)]
pub enum Abandoned {
    /// The lease runs out after this long (SQLite, Redis).
    LeaseExpires(Duration),
    /// The lock ends with the holder's connection (PostgreSQL advisory locks).
    WithConnection,
    /// The lock ends with the holder's process (OS file locks: the SQLite store on a file).
    WithProcess,
}

/// The [`RefreshLock`](atoauth::store::RefreshLock) contract: mutual exclusion under
/// contention, independent keys, re-acquisition after release, and — for leases — expiry of an
/// abandoned lock and release by its owner only.
///
/// # Panics
/// When the lock breaks the contract.
pub async fn lock_contract(lock: Arc<dyn atoauth::store::RefreshLock>, abandoned: Abandoned) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let key = format!("lock-{}", nonce());

    // Mutual exclusion: never two holders at once.
    let holders = Arc::new(AtomicUsize::new(0));
    let overlap = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (lock, key, holders, overlap) = (
            Arc::clone(&lock),
            key.clone(),
            Arc::clone(&holders),
            Arc::clone(&overlap),
        );
        tasks.push(tokio::spawn(async move {
            for _ in 0..3 {
                let guard = lock.lock(&key).await.expect("lock");
                if holders.fetch_add(1, Ordering::SeqCst) != 0 {
                    overlap.store(true, Ordering::SeqCst);
                }
                tokio::task::yield_now().await;
                holders.fetch_sub(1, Ordering::SeqCst);
                guard.release().await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    assert!(!overlap.load(Ordering::SeqCst), "two holders at once");

    // Independent keys do not block each other.
    let a = lock.lock(&format!("{key}-a")).await.expect("lock a");
    let b = tokio::time::timeout(Duration::from_secs(5), lock.lock(&format!("{key}-b")))
        .await
        .expect("another key is free")
        .expect("lock b");
    a.release().await;
    b.release().await;

    if let Abandoned::LeaseExpires(lease) = abandoned {
        // An abandoned lease expires; its late release does not free the next owner's lock.
        let abandoned_key = format!("{key}-abandoned");
        let first = lock.lock(&abandoned_key).await.expect("first");
        let second = tokio::time::timeout(
            lease * 20 + Duration::from_secs(5),
            lock.lock(&abandoned_key),
        )
        .await
        .expect("the lease expired")
        .expect("second");
        // The first owner releases late, after its lease ran out: it must not free `second`.
        first.release().await;
        tokio::time::sleep(lease / 2).await;
        let third = tokio::time::timeout(lease / 4, lock.lock(&abandoned_key)).await;
        assert!(
            third.is_err(),
            "the old owner's release freed the new owner's lock"
        );
        drop(second);
    }
}

/// The [`ReplayStore`](atoauth::store::ReplayStore) contract: one `true` per key while the mark
/// lasts, even for many callers at once; marks expire.
///
/// # Panics
/// When the store breaks the contract.
pub async fn replay_store_contract(store: Arc<dyn atoauth::store::ReplayStore>) {
    let key = format!("mark-{}", nonce());
    let long = std::time::Duration::from_secs(60);
    assert!(store.first_use(&key, long).await.expect("first use"));
    assert!(!store.first_use(&key, long).await.expect("second use"));
    let raced = format!("raced-{}", nonce());
    let attempts = (0..16).map(|_| {
        let store = Arc::clone(&store);
        let key = raced.clone();
        tokio::spawn(async move { store.first_use(&key, long).await.expect("a use") })
    });
    let mut firsts = 0;
    for attempt in attempts {
        firsts += usize::from(attempt.await.expect("a task"));
    }
    assert_eq!(firsts, 1, "exactly one of 16 concurrent callers is first");
    let short = format!("short-{}", nonce());
    assert!(
        store
            .first_use(&short, std::time::Duration::from_millis(200))
            .await
            .expect("a use")
    );
    tokio::time::sleep(std::time::Duration::from_millis(2300)).await;
    assert!(
        store
            .first_use(&short, std::time::Duration::from_millis(200))
            .await
            .expect("after expiry"),
        "an expired mark no longer counts"
    );
}
