//! `atoauth client-metadata validate|new`: check a client metadata document against every
//! B/C/D rule (all violations at once, each with its id), and write valid ones from a few flags.
//! The rules are the core crate's validator; nothing is re-implemented here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use atoauth::client_metadata::{
    ApplicationType, ClientMetadata, LoopbackClient, MAX_CLIENT_METADATA_BYTES, ValidationOptions,
    check_client_metadata, check_jwks_document, is_loopback_client_id,
};
use atoauth::http::{FetchLimits, HttpClient};
use atoauth::protocol::rules::Violation;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::config::Config;

/// Validate or create client metadata documents
#[derive(Args, Debug)]
pub(crate) struct ClientMetadataArgs {
    #[command(subcommand)]
    command: ClientMetadataCommand,
}

#[derive(Subcommand, Debug)]
enum ClientMetadataCommand {
    Validate(ValidateArgs),
    New(NewArgs),
}

/// Check a client metadata document (a file, an https URL, or a loopback client_id)
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  atoauth client-metadata validate ./oauth-client-metadata.json\n  atoauth client-metadata validate ./oauth-client-metadata.json --client-id https://app.example.com/oauth-client-metadata.json\n  atoauth client-metadata validate https://app.example.com/oauth-client-metadata.json\n  atoauth client-metadata validate 'http://localhost?scope=atproto'\n\n\
A file is checked offline (a jwks_uri is never fetched); --client-id checks that it is the document\n\
served at that URL. A URL is fetched through the hardened HTTP path, its client_id must equal the\n\
URL, and a jwks_uri is fetched too. Errors are what the official authorization server refuses (or a\n\
rule forbids); warnings (B6.3) work but are not recommended. Exit 0 without errors, 1 otherwise.\n\
--json prints {\"source\", \"kind\" (document|loopback), \"valid\", \"violations\": [{\"rule\", \"message\", \"severity\"}]}."
)]
struct ValidateArgs {
    /// A file path, an https URL, or an http://localhost… client_id
    source: String,
    /// The URL a file will be served at: its client_id must equal it (B5.1)
    #[arg(long, value_name = "HTTPS URL")]
    client_id: Option<String>,
}

/// Write a valid client metadata document from a few flags
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  atoauth client-metadata new --web --client-id https://app.example.com/oauth-client-metadata.json\n  atoauth client-metadata new --web --client-id https://app.example.com/oauth-client-metadata.json --keys keys.json --out metadata.json\n  atoauth client-metadata new --native --client-id https://app.example.com/client.json\n\n\
The document is validated before it is written; nothing is written when a rule fails."
)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["web", "native"])))]
struct NewArgs {
    /// A web client (https redirect URIs)
    #[arg(long)]
    web: bool,
    /// A native app (custom-scheme or loopback redirects; always public)
    #[arg(long)]
    native: bool,
    /// Where the document will be served (an https URL with a path)
    #[arg(long, value_name = "HTTPS URL")]
    client_id: String,
    /// A redirect URI (repeatable) [default: <origin>/oauth/callback for web,
    /// <reversed host>:/callback for native]
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// Every scope the client may request
    #[arg(long, default_value = "atproto")]
    scope: String,
    /// The name shown to users
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// The home page (same origin as the client_id)
    #[arg(long, value_name = "URL")]
    client_uri: Option<String>,
    /// Confidential web client: the private JWKS from `atoauth keygen` (created if missing);
    /// its public keys go inline in "jwks"
    #[arg(long, value_name = "FILE", conflicts_with_all = ["native", "jwks_uri"])]
    keys: Option<PathBuf>,
    /// Confidential web client whose public keys are served at this URL instead
    #[arg(long, value_name = "HTTPS URL", conflicts_with = "native")]
    jwks_uri: Option<String>,
    /// Write the document here instead of standard output
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub(crate) async fn run(config: &Config, args: ClientMetadataArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ClientMetadataCommand::Validate(args) => validate(config, args).await,
        ClientMetadataCommand::New(args) => new(&args),
    }
}

async fn validate(config: &Config, args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let source = args.source.trim().to_owned();
    let (kind, violations, summary) = if is_loopback_client_id(&source) {
        match LoopbackClient::parse(&source) {
            Ok(client) => (
                "loopback",
                Vec::new(),
                format!(
                    "a loopback development client (section C): public, native; redirect URIs {} \
                     (any port); scope {:?}. The authorization server synthesises its metadata.",
                    client.effective_redirect_uris().join(", "),
                    client.scope()
                ),
            ),
            Err(violations) => ("loopback", violations.0, String::new()),
        }
    } else {
        let fetched = source.starts_with("https://") || source.starts_with("http://");
        let document = if fetched {
            fetch(config, &source).await?
        } else {
            read_document(&source)?
        };
        let options = ValidationOptions {
            fetched_from: if fetched {
                Some(source.clone())
            } else {
                args.client_id.clone()
            },
            // --insecure-dev: a port in client_id, which the official server accepts (B1).
            insecure_allow_client_id_port: config.insecure_dev,
        };
        let mut violations = check_client_metadata(&document, &options);
        // The server fetches a jwks_uri for any client, and refuses the client when it fails.
        if fetched && let Some(jwks_uri) = document["jwks_uri"].as_str() {
            let confidential = document["token_endpoint_auth_method"] == "private_key_jwt";
            violations.extend(published_keys(config, jwks_uri, confidential).await);
        }
        ("document", violations, describe(&document))
    };
    let errors = violations.iter().filter(|v| v.is_error()).count();
    let warnings = violations.len() - errors;
    let valid = errors == 0;
    if config.json {
        let report = json!({
            "source": source,
            "kind": kind,
            "valid": valid,
            "violations": violations,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        if valid {
            println!("✓ {source}: valid — {summary}");
        } else {
            println!("✗ {source}: {errors} error(s), {warnings} warning(s)");
        }
        // Errors first: they are what stops a sign-in.
        for violation in violations.iter().filter(|v| v.is_error()) {
            println!("  [{}] {}", violation.rule, violation.message);
        }
        for violation in violations.iter().filter(|v| !v.is_error()) {
            println!("  [{}] warning: {}", violation.rule, violation.message);
        }
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A document file, within the size the authorization server reads (B6.1).
fn read_document(path: &str) -> anyhow::Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {path}"))?;
    if bytes.len() > MAX_CLIENT_METADATA_BYTES {
        bail!(
            "[B6.1] {path} is {} bytes; the authorization server reads at most {MAX_CLIENT_METADATA_BYTES}",
            bytes.len()
        );
    }
    serde_json::from_slice(&bytes).with_context(|| format!("[B4] {path} is not JSON"))
}

/// B5.10/J1: the keys at `jwks_uri`, fetched as the authorization server fetches them; for a
/// public client only whether they can be fetched (none is ever used).
async fn published_keys(config: &Config, jwks_uri: &str, confidential: bool) -> Vec<Violation> {
    match fetch(config, jwks_uri).await {
        Ok(jwks) if confidential => check_jwks_document(&jwks),
        Ok(jwks) if jwks["keys"].is_array() => Vec::new(),
        Ok(_) => vec![Violation::error(
            "B5.10",
            format!("{jwks_uri} holds no JWKS (an object with a \"keys\" array)"),
        )],
        Err(error) => vec![Violation::error(
            "B5.10",
            format!("the JWKS at {jwks_uri} cannot be used: {error:#}"),
        )],
    }
}

fn describe(document: &Value) -> String {
    let kind = document["application_type"].as_str().unwrap_or("web");
    let confidential = document["token_endpoint_auth_method"] == "private_key_jwt";
    let keys = document["jwks"]["keys"].as_array().map_or(0, Vec::len);
    match (confidential, document.get("jwks_uri")) {
        (true, Some(uri)) => format!("{kind}, confidential, keys at {uri}"),
        (true, None) => format!("{kind}, confidential, {keys} key(s) inline"),
        (false, _) => format!("{kind}, public"),
    }
}

/// B4/B5.1: fetched like the authorization server fetches it: HTTP 200, JSON, no redirects.
pub(crate) async fn fetch(config: &Config, url: &str) -> anyhow::Result<Value> {
    let http = config.http_client()?;
    let mut request = http::Request::get(url)
        .header(http::header::ACCEPT, "application/json")
        .body(Default::default())
        .with_context(|| format!("{url:?} is not a URL"))?;
    FetchLimits::CLIENT_METADATA.apply(&mut request);
    let response = http
        .send(request)
        .await
        .with_context(|| format!("cannot fetch {url}"))?;
    if response.status() != http::StatusCode::OK {
        bail!(
            "[B4] {url} answered HTTP {}, not 200",
            response.status().as_u16()
        );
    }
    serde_json::from_slice(response.body())
        .with_context(|| format!("[B4] {url} did not answer JSON"))
}

fn new(args: &NewArgs) -> anyhow::Result<ExitCode> {
    let client_url = url::Url::parse(&args.client_id).context("--client-id is not a URL")?;
    let origin = client_url.origin().ascii_serialization();
    let host = client_url.host_str().unwrap_or_default().to_owned();
    let redirects = if args.redirect_uris.is_empty() {
        if args.native {
            let reversed: Vec<&str> = host.split('.').rev().collect();
            vec![format!("{}:/callback", reversed.join("."))]
        } else {
            vec![format!("{origin}/oauth/callback")]
        }
    } else {
        args.redirect_uris.clone()
    };
    let mut builder = ClientMetadata::builder(&args.client_id)
        .application_type(if args.native {
            ApplicationType::Native
        } else {
            ApplicationType::Web
        })
        .scope(&args.scope);
    for uri in &redirects {
        builder = builder.redirect_uri(uri);
    }
    if let Some(name) = &args.name {
        builder = builder.client_name(name);
    }
    if let Some(uri) = &args.client_uri {
        builder = builder.client_uri(uri);
    }
    if let Some(file) = &args.keys {
        let keys = if file.exists() {
            crate::keygen::read_keyset(file)?
        } else {
            let keys = crate::keygen::create_key_file(file, None, false)?;
            eprintln!("wrote a new private key to {} (mode 0600)", file.display());
            keys
        };
        builder = builder.private_key_jwt_with_jwks(keys.public_jwks());
    } else if let Some(uri) = &args.jwks_uri {
        builder = builder.private_key_jwt_with_jwks_uri(uri);
    }
    let metadata = match builder.build() {
        Ok(metadata) => metadata,
        Err(violations) => {
            eprintln!("the document would break these rules; nothing was written:");
            for violation in violations.iter() {
                eprintln!("  {violation}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let text = serde_json::to_string_pretty(&metadata.to_json())? + "\n";
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "wrote {}; serve it at {} with HTTP 200 and application/json",
                path.display(),
                args.client_id
            );
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
