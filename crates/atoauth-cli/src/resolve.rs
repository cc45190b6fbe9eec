//! `atoauth resolve <handle|did>`: the DID, the handle and whether it verifies, and the PDS.

use std::process::ExitCode;

use anyhow::Context;
use atoauth::identity::{HandleResolution, IdentityResolver};
use atoauth::syntax::AtIdentifier;
use clap::Args;

use crate::config::Config;

/// Resolve a handle or DID to its DID, verified handle and PDS
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  atoauth resolve alice.bsky.social\n  atoauth resolve did:plc:ewvi7nxzyoun6zhxrhs64oiz --json\n\n\
--json prints {\"did\", \"handle\" (claimed, or null), \"handle_verified\", \"pds\"}."
)]
pub(crate) struct ResolveArgs {
    /// A handle (a leading @ is fine) or a DID
    identifier: String,
}

/// The identity resolver every command uses, built from the global options.
pub(crate) fn identity_resolver(config: &Config) -> anyhow::Result<IdentityResolver> {
    let mut builder = IdentityResolver::builder()
        .target_policy(config.target_policy())
        .plc_url(config.plc_url.clone());
    if let Some(service) = &config.handle_resolver {
        builder = builder.handle_resolution(HandleResolution::Service(service.clone()));
    }
    if let Some(dns) = config.dns_resolver()? {
        builder = builder.dns_resolver(dns);
    }
    builder.build().context("cannot set up identity resolution")
}

/// A lexicon resolver (permission sets) with the CLI's HTTP and DNS settings.
pub(crate) fn lexicon_resolver(
    config: &Config,
    identity: IdentityResolver,
) -> anyhow::Result<atoauth::lexicon::LexiconResolver> {
    let mut builder = atoauth::lexicon::LexiconResolver::builder(identity)
        .http_client(std::sync::Arc::new(config.http_client()?));
    if let Some(dns) = config.dns_resolver()? {
        builder = builder.dns_resolver(dns);
    }
    builder.build().context("cannot set up lexicon resolution")
}

pub(crate) async fn run(config: &Config, args: ResolveArgs) -> anyhow::Result<ExitCode> {
    let input = AtIdentifier::from_login_input(&args.identifier)?;
    let identity = identity_resolver(config)?.resolve(&input).await?;
    if config.json {
        let value = serde_json::json!({
            "did": identity.did,
            "handle": identity.handle,
            "handle_verified": identity.handle_verified,
            "pds": identity.pds.as_str(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("DID:     {}", identity.did);
        match (&identity.handle, identity.handle_verified) {
            (Some(handle), true) => println!("handle:  {handle} (verified)"),
            (Some(handle), false) => println!(
                "handle:  {} (claims {handle}, which does not resolve back to this DID)",
                atoauth::syntax::Handle::INVALID
            ),
            (None, _) => println!("handle:  none (the DID document claims no handle)"),
        }
        println!("PDS:     {}", identity.pds);
    }
    Ok(ExitCode::SUCCESS)
}
