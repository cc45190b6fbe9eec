//! Identity caching (H.34–H.36) and request coalescing.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::OnceCell;
// tokio's clock natively, so that tests can pause and advance it.
#[cfg(not(target_arch = "wasm32"))]
use tokio::time::Instant;
#[cfg(target_arch = "wasm32")]
use web_time::Instant;

use super::{DidDocument, IdentityError};
use crate::syntax::{Did, Handle};

/// A store for resolved identities. The resolver decides what to keep and for how long (hits and
/// negative answers get different TTLs; transport errors are never cached); a cache only keeps
/// entries until they expire. Implementations must allow concurrent use.
pub trait IdentityCache: Send + Sync + Debug {
    /// A live entry for a handle: its DID, or a cached negative answer.
    fn handle(&self, handle: &Handle) -> Option<Result<Did, IdentityError>>;
    /// Keeps a handle's answer for `ttl`.
    fn store_handle(&self, handle: &Handle, answer: Result<Did, IdentityError>, ttl: Duration);
    /// A live entry for a DID: its document, or a cached negative answer.
    fn document(&self, did: &Did) -> Option<Result<DidDocument, IdentityError>>;
    /// Keeps a DID's answer for `ttl`.
    fn store_document(&self, did: &Did, answer: Result<DidDocument, IdentityError>, ttl: Duration);
}

/// An in-memory [`IdentityCache`] with a bound on its size. When full, expired entries go first,
/// then the ones closest to expiry.
#[derive(Debug)]
pub struct MemoryIdentityCache {
    handles: Mutex<TtlMap<Handle, Result<Did, IdentityError>>>,
    documents: Mutex<TtlMap<Did, Result<DidDocument, IdentityError>>>,
}

impl MemoryIdentityCache {
    /// A cache holding at most `capacity` handles and `capacity` documents.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            handles: Mutex::new(TtlMap::new(capacity)),
            documents: Mutex::new(TtlMap::new(capacity)),
        }
    }
}

impl Default for MemoryIdentityCache {
    /// 10,000 entries of each kind.
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl IdentityCache for MemoryIdentityCache {
    fn handle(&self, handle: &Handle) -> Option<Result<Did, IdentityError>> {
        lock(&self.handles).get(handle)
    }
    fn store_handle(&self, handle: &Handle, answer: Result<Did, IdentityError>, ttl: Duration) {
        lock(&self.handles).insert(handle.clone(), answer, ttl);
    }
    fn document(&self, did: &Did) -> Option<Result<DidDocument, IdentityError>> {
        lock(&self.documents).get(did)
    }
    fn store_document(&self, did: &Did, answer: Result<DidDocument, IdentityError>, ttl: Duration) {
        lock(&self.documents).insert(did.clone(), answer, ttl);
    }
}

// A poisoned lock only means another thread panicked mid-update of a cache: the map is still
// usable, so carry on with it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug)]
struct TtlMap<K, V> {
    capacity: usize,
    entries: HashMap<K, (Instant, V)>,
}

impl<K: Hash + Eq + Clone, V: Clone> TtlMap<K, V> {
    fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: HashMap::new(),
        }
    }

    fn get(&mut self, key: &K) -> Option<V> {
        match self.entries.get(key) {
            Some((expires, value)) if *expires > Instant::now() => Some(value.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn insert(&mut self, key: K, value: V, ttl: Duration) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            let now = Instant::now();
            self.entries.retain(|_, (expires, _)| *expires > now);
            if self.entries.len() >= self.capacity
                && let Some(soonest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (expires, _))| *expires)
                    .map(|(k, _)| k.clone())
            {
                self.entries.remove(&soonest);
            }
        }
        self.entries.insert(key, (Instant::now() + ttl, value));
    }
}

/// The shared outcome of one lookup, which every coalesced caller awaits.
type Flight<V> = Arc<OnceCell<Result<V, IdentityError>>>;

/// Lookups in flight, so that N concurrent lookups of one key make one upstream request.
#[derive(Debug)]
pub(crate) struct Flights<K, V> {
    in_flight: Mutex<HashMap<K, Flight<V>>>,
}

impl<K, V> Default for Flights<K, V> {
    fn default() -> Self {
        Self {
            in_flight: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Flights<K, V> {
    /// Runs `fetch` unless a lookup of `key` is already under way, in which case its result is
    /// shared. If the caller driving the lookup is cancelled, a waiting caller takes over.
    pub(crate) async fn run<F, Fut>(&self, key: &K, fetch: F) -> Result<V, IdentityError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, IdentityError>>,
    {
        let cell = lock(&self.in_flight)
            .entry(key.clone())
            .or_insert_with(|| Arc::new(OnceCell::new()))
            .clone();
        let result = cell.get_or_init(fetch).await.clone();
        let mut in_flight = lock(&self.in_flight);
        if in_flight.get(key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            in_flight.remove(key);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(s: &str) -> Handle {
        Handle::new(s).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_their_ttl() {
        let cache = MemoryIdentityCache::new(10);
        let did = Did::new("did:plc:abc").unwrap();
        cache.store_handle(&handle("a.test"), Ok(did.clone()), Duration::from_secs(60));
        assert_eq!(cache.handle(&handle("a.test")).unwrap().unwrap(), did);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(cache.handle(&handle("a.test")).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_cache_evicts_the_entry_closest_to_expiry() {
        let cache = MemoryIdentityCache::new(2);
        let did = Did::new("did:plc:abc").unwrap();
        cache.store_handle(&handle("a.test"), Ok(did.clone()), Duration::from_secs(10));
        cache.store_handle(&handle("b.test"), Ok(did.clone()), Duration::from_secs(100));
        cache.store_handle(&handle("c.test"), Ok(did), Duration::from_secs(100));
        assert!(cache.handle(&handle("a.test")).is_none());
        assert!(cache.handle(&handle("b.test")).is_some());
        assert!(cache.handle(&handle("c.test")).is_some());
    }
}
