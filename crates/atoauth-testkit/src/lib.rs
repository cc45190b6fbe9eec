//! Test support for atoauth.
//!
//! - [`pds()`]: the official ATProto PDS (`interop/pds`) on loopback, installed on first use and
//!   started once per test binary, with test accounts and a headless "user" that signs in and
//!   consents.
//! - [`TestServer`]: a scripted HTTP server on 127.0.0.1 for hostile answers.
//! - [`TestDns`]: a DNS server on 127.0.0.1 that answers TXT queries from a table.
//! - [`oracle::ask`]: the official PDS's own code (its npm packages) as a differential oracle.
//!
//! # Lints
//! This crate runs only inside tests. It may `expect` and `panic!` where a fixture cannot be set
//! up, because failing the test with a clear message is the only sensible outcome there; it
//! still never `unwrap`s, so every failure says what went wrong.
#![allow(clippy::expect_used, clippy::panic)]

pub mod bff;
pub mod browser;
pub mod certs;
pub mod conformance;
mod dns;
mod faults;
pub mod fixtures;
pub mod kill;
pub mod markdown;
pub mod oracle;
mod pds;
mod recording;
pub mod repo;
mod server;
pub mod servers;
pub mod soak;
pub mod spa;
pub mod storm;
pub mod worker;

pub use dns::TestDns;
pub use faults::{Fault, FaultyHttp, FaultyStore, Gate, expire_session};
pub use pds::{
    Account, AuthorizeError, Consent, Pds, Ready, http_client, install_interop, interop_dir, pds,
};
pub use recording::{Exchange, RecordingHttp};
pub use reqwest;
pub use server::{Reply, SeenRequest, TestServer};

/// `target/<profile>/examples/<name>`: an example program, next to the calling test's binary
/// (`cargo test` builds the examples before it runs tests).
///
/// # Panics
/// When the example is not built.
pub fn example_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let path = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/<profile>/deps")
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --examples` (cargo test builds it too)",
        path.display()
    );
    path
}
