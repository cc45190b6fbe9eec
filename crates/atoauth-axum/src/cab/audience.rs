//! Which audiences an assertion may name (U4): authorization servers whose metadata the SDK's
//! discovery accepts. Accepted metadata is cached by discovery; refusals are remembered here for
//! a minute, so a caller repeating a bad `aud` makes the backend fetch nothing more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use atoauth::protocol::metadata::{AuthorizationServerMetadata, Discovery};

/// How long a refused audience stays refused without a new fetch.
const REFUSAL_TTL: Duration = Duration::from_secs(60);
/// How many refusals are remembered; beyond that the memory starts over.
const MAX_REFUSALS: usize = 1024;

#[derive(Debug)]
pub(super) struct Audiences {
    discovery: Discovery,
    refused: Mutex<HashMap<String, (Instant, String)>>,
}

impl Audiences {
    pub(super) fn new(discovery: Discovery) -> Self {
        Self {
            discovery,
            refused: Mutex::default(),
        }
    }

    /// The metadata of the authorization server `aud`, or why it is not one.
    pub(super) async fn check(
        &self,
        aud: &str,
    ) -> Result<Arc<AuthorizationServerMetadata>, String> {
        if let Some(reason) = self.remembered(aud) {
            return Err(reason);
        }
        match self.discovery.authorization_server(aud, false).await {
            Ok(server) => Ok(server),
            Err(error) => {
                let reason = error.to_string();
                let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
                if refused.len() >= MAX_REFUSALS {
                    refused.clear();
                }
                refused.insert(aud.to_owned(), (Instant::now(), reason.clone()));
                Err(reason)
            }
        }
    }

    fn remembered(&self, aud: &str) -> Option<String> {
        let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        match refused.get(aud) {
            Some((when, reason)) if when.elapsed() < REFUSAL_TTL => Some(reason.clone()),
            Some(_) => {
                refused.remove(aud);
                None
            }
            None => None,
        }
    }
}
