//! The client-assertion backend of a single-page app built with atoauth-browser: the app stays
//! its own OAuth client in the browser, and this server signs its `private_key_jwt` assertions,
//! so the app gets a confidential client's sessions (2 years at the official PDS, not 2 weeks).
//! Keys come from `atoauth keygen --out keys.json`; their public halves go in the `jwks` of the
//! app's client metadata at CLIENT_ID. Run it behind your TLS reverse proxy with
//! `CLIENT_ID=https://app.example.com/client-metadata.json PUBLIC_URL=https://api.example.com
//! APP_ORIGIN=https://app.example.com cargo run -p atoauth-axum --example client_assertion`;
//! the app then passes `clientAssertionBackend: 'https://api.example.com/oauth/client-assertion'`.
//! `atoauth serve --spa <dir> --keys keys.json --client-id <url>` does the same from one origin.
//! INSECURE_LOOPBACK_PDS=1 lets it accept a PDS on this machine (development only).
use atoauth::{Keyset, TargetPolicy};
use atoauth_axum::cab::{CabConfig, ClientAssertionBackend};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keys = Keyset::from_jwks_json(&std::fs::read_to_string("keys.json")?)?;
    let public_url = std::env::var("PUBLIC_URL")?.parse()?;
    let mut config = CabConfig::new(std::env::var("CLIENT_ID")?, keys, public_url);
    config.allowed_origins = vec![std::env::var("APP_ORIGIN")?];
    if std::env::var("INSECURE_LOOPBACK_PDS").is_ok() {
        config.target_policy = TargetPolicy::InsecureAllowLoopbackHttp;
    }
    let app = ClientAssertionBackend::new(config)?.router();
    let port: u16 = std::env::var("PORT").map_or(Ok(8080), |port| port.parse())?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("Listening on http://127.0.0.1:{port}");
    atoauth_axum::serve(listener, app, Default::default(), std::future::pending()).await?;
    Ok(())
}
