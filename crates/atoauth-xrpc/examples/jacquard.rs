//! Sign in from the command line and post with jacquard's typed requests:
//! `cargo run -p atoauth-xrpc --example jacquard -- alice.bsky.social "Hello"`.
//! To try it against a PDS on this machine, set PLC_URL and HANDLE_RESOLVER (development only).
use std::time::Duration;

use atoauth::loopback::CallbackServer;
use atoauth::{AuthorizeOptions, LoopbackClient, OAuthClient};
use jacquard_api::app_bsky::feed::post::Post;
use jacquard_api::com_atproto::repo::create_record::CreateRecord;
use jacquard_common::types::{datetime::Datetime, value::to_data};
use jacquard_common::xrpc::XrpcClient;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (handle, text) = (
        args.next().ok_or("usage: jacquard <handle> <text>")?,
        args.collect::<String>(),
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

    let xrpc = atoauth_xrpc::jacquard::OAuthXrpc::new(session.clone());
    let post: Post = Post {
        created_at: Datetime::now(),
        text: text.into(),
        embed: None,
        entities: None,
        facets: None,
        labels: None,
        langs: None,
        reply: None,
        tags: None,
        extra_data: None,
    };
    let request: CreateRecord = CreateRecord {
        collection: "app.bsky.feed.post".parse()?,
        record: to_data(&post)?,
        repo: session.did().as_str().parse()?,
        rkey: None,
        swap_commit: None,
        validate: None,
        extra_data: None,
    };
    let created = xrpc.send(request).await?.into_output()?;
    println!("Posted {}", created.uri);
    Ok(())
}
