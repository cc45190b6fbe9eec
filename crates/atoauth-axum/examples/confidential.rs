//! A confidential web client as deployed: a published client metadata document, keys made by
//! `atoauth keygen --out keys.json` (`private_key_jwt`), sessions and the cookie key on disk,
//! behind your TLS reverse proxy. Run it with
//! `PUBLIC_URL=https://app.example.com cargo run -p atoauth-axum --example confidential`.
//! To try it against a PDS on this machine, set PLC_URL and HANDLE_RESOLVER (development only).
use std::sync::Arc;

use atoauth::{ClientMetadata, Keyset, OAuthClient, Url};
use atoauth_axum::html::{csrf_form, document, escape};
use atoauth_axum::{AtoauthWeb, Browser, CookieKey};
use axum::response::Html;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let public_url: Url = std::env::var("PUBLIC_URL")?.parse()?;
    let port: u16 = std::env::var("PORT").map_or(Ok(8080), |port| port.parse())?;
    let keys = Keyset::from_jwks_json(&std::fs::read_to_string("keys.json")?)?;
    let mut metadata =
        ClientMetadata::builder(public_url.join("oauth-client-metadata.json")?.as_str())
            .scope("atproto transition:generic")
            .redirect_uri(public_url.join("oauth/callback")?.as_str())
            .client_name("atoauth confidential example")
            .private_key_jwt_with_jwks(keys.public_jwks());
    let mut client = OAuthClient::builder();
    if let (Ok(plc), Ok(pds)) = (std::env::var("PLC_URL"), std::env::var("HANDLE_RESOLVER")) {
        // The test machine's client host has a port, which B1 forbids in production.
        metadata = metadata.insecure_allow_client_id_port();
        let (plc, pds) = (plc.parse()?, pds.parse()?);
        client = client
            .insecure_local_pds(plc, pds)
            .insecure_allow_client_id_port();
    }
    let store = Arc::new(atoauth_sqlx::SqliteStore::open("confidential.db".as_ref()).await?);
    let client = client
        .metadata(metadata.build()?)
        .keyset(keys)
        .store(store.clone())
        .build()?;
    let web = AtoauthWeb::builder(client, public_url)
        .store(store)
        .cookie_key(CookieKey::load_or_create("cookie.key".as_ref())?)
        .build()?;
    let app = axum::Router::new().route("/", axum::routing::get(home));
    println!("Listening on http://127.0.0.1:{port}");
    web.run(("127.0.0.1", port), app).await?;
    Ok(())
}

/// Who is signed in, with a sign-out button; or the sign-in form.
async fn home(mut browser: Browser) -> Html<String> {
    let csrf = browser.csrf_token().unwrap_or_default().to_owned();
    let body = match browser.oauth_session().await {
        Some(session) => {
            let granted = session.granted_scope().to_string();
            let sign_out = csrf_form("/oauth/logout", &csrf, "<button>Sign out</button>");
            let did = escape(session.did().as_str());
            format!(
                "<h1>Hello, {did}</h1><p>Granted: {}</p>{sign_out}",
                escape(&granted)
            )
        }
        None => csrf_form(
            "/oauth/login",
            &csrf,
            "<input name=identifier placeholder=alice.bsky.social><button>Sign in</button>",
        ),
    };
    document("Confidential example", &body)
}
