//! Clock-skew correction: the offset between this machine's clock and each server's, measured
//! from its `Date` headers, applied to the `iat` of the DPoP proofs and client assertions sent
//! to that server. A device whose clock is minutes off otherwise fails every request (the
//! reference PDS accepts proofs at most about 190 s old).
//!
//! Offsets are kept per server origin and only applied to that origin: a server a visitor
//! names at sign-in, with a `Date` a year off, moves the clock for its own requests and for no
//! one else's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::crypto::Clock;

/// Offsets this small are the `Date` header's one-second resolution, not skew.
const NOISE_SECS: i64 = 2;

/// At most this many skewed servers are remembered; beyond, the table starts over (servers in
/// sync take no room).
const MAX_SKEWED_ORIGINS: usize = 1024;

/// The injected clock, corrected per server origin by the offsets measured from it.
#[derive(Debug)]
pub(crate) struct SkewedClock {
    base: Arc<dyn Clock>,
    offsets: Mutex<HashMap<String, i64>>,
    enabled: bool,
}

impl SkewedClock {
    pub(crate) fn new(base: Arc<dyn Clock>, enabled: bool) -> Self {
        Self {
            base,
            offsets: Mutex::default(),
            enabled,
        }
    }

    /// The local clock, uncorrected (for expiry bookkeeping, which only compares local times).
    pub(crate) fn local(&self) -> i64 {
        self.base.unix_time()
    }

    /// The local clock itself, for proofs to servers whose offset is not learnt (an app's own
    /// backend).
    pub(crate) fn base(&self) -> &dyn Clock {
        self.base.as_ref()
    }

    /// Learns `origin`'s offset from its response's `Date` header; whether it changed
    /// noticeably.
    pub(crate) fn observe(&self, origin: &str, headers: &http::HeaderMap) -> bool {
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
        let mut offsets = self.offsets.lock().unwrap_or_else(PoisonError::into_inner);
        let previous = if measured.abs() > NOISE_SECS {
            if offsets.len() >= MAX_SKEWED_ORIGINS && !offsets.contains_key(origin) {
                offsets.clear();
            }
            offsets.insert(origin.to_owned(), measured)
        } else {
            offsets.remove(origin)
        };
        let offset = offsets.get(origin).copied().unwrap_or(0);
        (previous.unwrap_or(0) - offset).abs() > NOISE_SECS
    }

    /// The current offset of `origin` in seconds (server minus local).
    pub(crate) fn offset(&self, origin: &str) -> i64 {
        self.offsets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(origin)
            .copied()
            .unwrap_or(0)
    }

    /// The clock as `origin` keeps it.
    pub(crate) fn at<'a>(&'a self, origin: &'a str) -> OriginClock<'a> {
        OriginClock {
            clock: self,
            origin,
        }
    }
}

/// The corrected clock for one server origin.
#[derive(Debug)]
pub(crate) struct OriginClock<'a> {
    clock: &'a SkewedClock,
    origin: &'a str,
}

impl Clock for OriginClock<'_> {
    fn unix_time(&self) -> i64 {
        self.clock.base.unix_time() + self.clock.offset(self.origin)
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
        let pds = "https://pds.example";
        assert!(clock.observe(pds, &date(1_000_200)));
        assert_eq!(clock.at(pds).unix_time(), 1_000_200);
        assert_eq!(clock.local(), 1_000_000);
        assert!(!clock.observe(pds, &date(1_000_201)), "one second is noise");
        assert!(clock.observe(pds, &date(1_000_001)));
        assert_eq!(clock.offset(pds), 0);
        assert!(!clock.observe(pds, &http::HeaderMap::new()));
    }

    #[test]
    fn one_server_s_skew_never_moves_another_s_clock() {
        // #15 finding 8: a server a year off, named by one visitor, skewed everyone's proofs.
        let clock = SkewedClock::new(Arc::new(FixedClock(1_000_000)), true);
        let evil = "https://evil.example";
        let pds = "https://pds.example";
        assert!(clock.observe(evil, &date(1_000_000 + 365 * 86_400)));
        assert_eq!(clock.at(evil).unix_time(), 1_000_000 + 365 * 86_400);
        assert_eq!(clock.at(pds).unix_time(), 1_000_000);
        assert!(clock.observe(pds, &date(999_900)));
        assert_eq!(clock.at(pds).unix_time(), 999_900);
        assert_eq!(clock.at(evil).unix_time(), 1_000_000 + 365 * 86_400);
    }

    #[test]
    fn the_table_of_skewed_servers_is_bounded() {
        let clock = SkewedClock::new(Arc::new(FixedClock(1_000_000)), true);
        for i in 0..=MAX_SKEWED_ORIGINS {
            clock.observe(&format!("https://s{i}.example"), &date(1_000_100));
        }
        let remembered = clock.offsets.lock().unwrap().len();
        assert!(remembered <= MAX_SKEWED_ORIGINS, "{remembered}");
    }

    #[test]
    fn disabled_correction_never_moves() {
        let clock = SkewedClock::new(Arc::new(FixedClock(1_000_000)), false);
        assert!(!clock.observe("https://pds.example", &date(1_000_200)));
        assert_eq!(clock.at("https://pds.example").unix_time(), 1_000_000);
    }
}
