//! Test support for atoauth.
//!
//! - [`pds()`]: the official ATProto PDS (`interop/pds`) on loopback, installed on first use and
//!   started once per test binary, with test accounts and a headless "user" that signs in and
//!   consents.
//!
//! # Lints
//! This crate runs only inside tests. It may `expect` and `panic!` where a fixture cannot be set
//! up, because failing the test with a clear message is the only sensible outcome there; it
//! still never `unwrap`s, so every failure says what went wrong.
#![allow(clippy::expect_used, clippy::panic)]

mod pds;

pub use pds::{Account, AuthorizeError, Consent, Pds, Ready, interop_dir, pds};
