//! Sign in from the command line and call the PDS: `cargo run --example cli -- alice.bsky.social`.
//! To try it against a PDS on this machine, set PLC_URL and HANDLE_RESOLVER (development only).
use std::time::Duration;

use atoauth::loopback::CallbackServer;
use atoauth::{AuthorizeOptions, LoopbackClient, OAuthClient, TargetPolicy};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let handle = std::env::args().nth(1).ok_or("usage: cli <handle>")?;
    let mut client = OAuthClient::builder().loopback(LoopbackClient::with_scope("atproto")?);
    if let (Ok(plc), Ok(resolver)) = (std::env::var("PLC_URL"), std::env::var("HANDLE_RESOLVER")) {
        client = client
            .plc_directory(plc.parse()?)
            .handle_resolver(resolver.parse()?)
            .target_policy(TargetPolicy::InsecureAllowLoopbackHttp);
    }
    let client = client.build()?;

    let server = CallbackServer::bind().await?;
    let options = AuthorizeOptions::default().redirect_uri(server.redirect_uri());
    let url = client.start_authorization(&handle, options).await?;
    println!("Open this URL to sign in: {url}");
    let params = server.wait(Duration::from_secs(300)).await?;
    let session = client.complete_authorization(params).await?.session;

    let me: serde_json::Value = session.query("com.atproto.server.getSession", &[]).await?;
    println!("Signed in as {} ({})", me["handle"], session.did());
    Ok(())
}
