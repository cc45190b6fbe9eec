//! Clocks that work on every target. In a browser (`wasm32-unknown-unknown`) the standard
//! library has no clock and `std::time::Instant::now()` panics, so that build reads the page's
//! clocks (`performance.now()`, `Date.now()`) through `web-time`; native builds use std's.

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use std::time::{Instant, SystemTime, UNIX_EPOCH};
#[cfg(target_arch = "wasm32")]
pub(crate) use web_time::{Instant, SystemTime, UNIX_EPOCH};
