//! Sign in from the command line and post with atrium's typed API:
//! `cargo run -p atoauth-xrpc --example atrium -- alice.bsky.social "Hello"`.
//! To try it against a PDS on this machine, set PLC_URL and HANDLE_RESOLVER (development only).
use std::time::Duration;

use atoauth::loopback::CallbackServer;
use atoauth::{AuthorizeOptions, LoopbackClient, OAuthClient};
use atrium_api::app::bsky::feed::post::RecordData;
use atrium_api::com::atproto::repo::create_record::InputData;
use atrium_api::types::{TryIntoUnknown, string::Datetime};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (handle, text) = (
        args.next().ok_or("usage: atrium <handle> <text>")?,
        args.collect(),
    );
    let scope = "atproto repo:app.bsky.feed.post?action=create";
    let mut client = OAuthClient::builder().loopback(LoopbackClient::with_scope(scope)?);
    if let (Ok(plc), Ok(resolver)) = (std::env::var("PLC_URL"), std::env::var("HANDLE_RESOLVER")) {
        client = client.insecure_local_pds(plc.parse()?, resolver.parse()?);
    }
    let client = client.build()?;
    let server = CallbackServer::bind().await?;
    let options = AuthorizeOptions::default().redirect_uri(server.redirect_uri());
    println!(
        "Open this URL to sign in: {}",
        client.start_authorization(&handle, options).await?
    );
    let session = client
        .complete_authorization(server.wait(Duration::from_secs(300)).await?)
        .await?
        .session;

    let agent = atoauth_xrpc::atrium::agent(session.clone());
    let post = RecordData {
        created_at: Datetime::now(),
        text,
        embed: None,
        entities: None,
        facets: None,
        labels: None,
        langs: None,
        reply: None,
        tags: None,
    };
    let input = InputData {
        collection: "app.bsky.feed.post".parse()?,
        record: post.try_into_unknown()?,
        repo: session.did().as_str().parse()?,
        rkey: None,
        swap_commit: None,
        validate: None,
    };
    let created = agent
        .api
        .com
        .atproto
        .repo
        .create_record(input.into())
        .await?;
    println!("Posted {}", created.uri);
    Ok(())
}
