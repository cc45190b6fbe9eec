//! A web app: sign in with your handle, post to your PDS, sign out. Sessions in SQLite.
//! `cargo run -p atoauth-axum --example web`, then open http://127.0.0.1:8080.
//! To try it against a PDS on this machine, set PLC_URL and HANDLE_RESOLVER (development only).
use std::sync::Arc;

use atoauth_axum::html::{csrf_form, document, escape};
use atoauth_axum::{AtoauthWeb, Browser, CsrfForm, Error, SignedIn};
use axum::response::Html;
use axum::routing::{get, post};

const SCOPE: &str = "atproto repo:app.bsky.feed.post?action=create";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT").map_or(Ok(8080), |port| port.parse())?;
    let store = Arc::new(atoauth_sqlx::SqliteStore::open("web-example.db".as_ref()).await?);
    let mut web = AtoauthWeb::loopback_dev(port, SCOPE)
        .store(store)
        .sign_in_page("/login");
    if let (Ok(plc), Ok(pds)) = (std::env::var("PLC_URL"), std::env::var("HANDLE_RESOLVER")) {
        let (plc, pds) = (plc.parse()?, pds.parse()?);
        web = web.client_options(|client| client.insecure_local_pds(plc, pds));
    }
    let web = web.build()?;
    let app = axum::Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/post", post(create_post));
    println!("Listening on http://127.0.0.1:{port}");
    web.run(("127.0.0.1", port), app).await?;
    Ok(())
}

async fn login(browser: Browser) -> Html<String> {
    let fields = "<input name=identifier placeholder=alice.bsky.social><button>Sign in</button>";
    let csrf = browser.csrf_token().unwrap_or_default();
    document("Sign in", &csrf_form("/oauth/login", csrf, fields))
}

async fn home(user: SignedIn) -> Html<String> {
    let handle = user
        .session
        .handle()
        .map_or("?".to_owned(), |h| h.to_string());
    let post = csrf_form(
        "/post",
        &user.csrf_token,
        "<input name=text><button>Post</button>",
    );
    let sign_out = csrf_form(
        "/oauth/logout",
        &user.csrf_token,
        "<button>Sign out</button>",
    );
    let body = format!("<h1>Hello, {}</h1>{post}{sign_out}", escape(&handle));
    document("Home", &body)
}

#[derive(serde::Deserialize)]
struct NewPost {
    text: String,
}

async fn create_post(
    user: SignedIn,
    CsrfForm(new): CsrfForm<NewPost>,
) -> Result<Html<String>, Error> {
    let created_at = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let record = serde_json::json!({
        "repo": user.session.did(),
        "collection": "app.bsky.feed.post",
        "record": {"$type": "app.bsky.feed.post", "text": new.text, "createdAt": created_at},
    });
    let created: serde_json::Value = user
        .session
        .procedure("com.atproto.repo.createRecord", &record)
        .await?;
    let uri = escape(created["uri"].as_str().unwrap_or_default());
    Ok(document(
        "Posted",
        &format!("<p>Posted <code id=uri>{uri}</code></p><a href=/>Back</a>"),
    ))
}
