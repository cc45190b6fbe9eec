//! Deterministic clock and randomness for tests (issue #5 item 8). Public so the testkit and
//! downstream tests can use them; never use them in production.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::crypto::{Clock, RandomError, Randomness};

/// A clock stuck at a given Unix time.
#[derive(Clone, Copy, Debug)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn unix_time(&self) -> i64 {
        self.0
    }
}

/// A clock tests can move.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock at `unix_time`.
    #[must_use]
    pub fn new(unix_time: i64) -> Self {
        Self(AtomicI64::new(unix_time))
    }

    /// Moves the clock forward by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn unix_time(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Reproducible "randomness": SHA-256 of a seed and a counter. Insecure by construction.
#[derive(Debug)]
pub struct SeededRandomness {
    seed: u64,
    counter: AtomicU64,
}

impl SeededRandomness {
    /// A stream determined by `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            counter: AtomicU64::new(0),
        }
    }
}

impl Randomness for SeededRandomness {
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError> {
        for chunk in dest.chunks_mut(32) {
            let n = self.counter.fetch_add(1, Ordering::SeqCst);
            let block = Sha256::new()
                .chain_update(self.seed.to_le_bytes())
                .chain_update(n.to_le_bytes())
                .finalize();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        Ok(())
    }
}
