//! Injectable randomness and time (S3), so `state`, PKCE, `jti` and `iat` are deterministic in
//! tests and come from the OS CSPRNG and wall clock otherwise.

use crate::time::{SystemTime, UNIX_EPOCH};
use std::fmt::Debug;

/// The OS random number generator failed.
#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed: {0}")]
pub struct RandomError(pub String);

/// A source of cryptographically secure random bytes.
pub trait Randomness: Send + Sync + Debug {
    /// Fills `dest` with random bytes.
    ///
    /// # Errors
    /// When no secure randomness is available; callers must then fail, never fall back.
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError>;
}

/// The operating system's CSPRNG (through `getrandom`). The default.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRandomness;

impl Randomness for OsRandomness {
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError> {
        getrandom::fill(dest).map_err(|e| RandomError(e.to_string()))
    }
}

/// `bytes` random bytes as base64url: `state`, `jti`, session ids (≥ 96 bits, I4).
///
/// # Errors
/// When the randomness source fails.
pub fn random_token(random: &dyn Randomness, bytes: usize) -> Result<String, RandomError> {
    let mut buffer = vec![0u8; bytes];
    random.fill(&mut buffer)?;
    Ok(super::base64url(&buffer))
}

/// The current time, as Unix seconds.
pub trait Clock: Send + Sync + Debug {
    /// Seconds since the Unix epoch.
    fn unix_time(&self) -> i64;
}

/// The system wall clock. The default.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn unix_time(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}
