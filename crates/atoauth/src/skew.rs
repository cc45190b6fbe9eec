//! Clock-skew correction: the offset between this machine's clock and the servers', measured
//! from their `Date` headers, applied to the `iat` of DPoP proofs and client assertions. A device
//! whose clock is minutes off otherwise fails every request (the reference PDS accepts proofs at
//! most about 190 s old).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::crypto::Clock;

/// Offsets this small are the `Date` header's one-second resolution, not skew.
const NOISE_SECS: i64 = 2;

/// The injected clock corrected by the last measured server offset.
#[derive(Debug)]
pub(crate) struct SkewedClock {
    base: Arc<dyn Clock>,
    offset: AtomicI64,
    enabled: bool,
}

impl SkewedClock {
    pub(crate) fn new(base: Arc<dyn Clock>, enabled: bool) -> Self {
        Self {
            base,
            offset: AtomicI64::new(0),
            enabled,
        }
    }

    /// The local clock, uncorrected (for expiry bookkeeping, which only compares local times).
    pub(crate) fn local(&self) -> i64 {
        self.base.unix_time()
    }

    /// Learns the offset from a response's `Date` header; whether it changed noticeably.
    pub(crate) fn observe(&self, headers: &http::HeaderMap) -> bool {
        if !self.enabled {
            return false;
        }
        let Some(server) = headers
            .get(http::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok())
        else {
            return false;
        };
        let measured = server - self.base.unix_time();
        let offset = if measured.abs() > NOISE_SECS {
            measured
        } else {
            0
        };
        let previous = self.offset.swap(offset, Ordering::Relaxed);
        (previous - offset).abs() > NOISE_SECS
    }

    /// The current offset in seconds (server minus local).
    pub(crate) fn offset(&self) -> i64 {
        self.offset.load(Ordering::Relaxed)
    }
}

impl Clock for SkewedClock {
    fn unix_time(&self) -> i64 {
        self.base.unix_time() + self.offset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FixedClock;

    fn date(unix: u64) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix);
        headers.insert(
            http::header::DATE,
            httpdate::fmt_http_date(time).parse().unwrap(),
        );
        headers
    }

    #[test]
    fn a_clock_200_s_behind_is_corrected_and_noise_is_ignored() {
        let clock = SkewedClock::new(Arc::new(FixedClock(1_000_000)), true);
        assert!(clock.observe(&date(1_000_200)));
        assert_eq!(clock.unix_time(), 1_000_200);
        assert_eq!(clock.local(), 1_000_000);
        assert!(!clock.observe(&date(1_000_201)), "one second is noise");
        assert!(clock.observe(&date(1_000_001)));
        assert_eq!(clock.offset(), 0);
        assert!(!clock.observe(&http::HeaderMap::new()));
    }

    #[test]
    fn disabled_correction_never_moves() {
        let clock = SkewedClock::new(Arc::new(FixedClock(1_000_000)), false);
        assert!(!clock.observe(&date(1_000_200)));
        assert_eq!(clock.unix_time(), 1_000_000);
    }
}
