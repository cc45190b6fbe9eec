//! The web example (`examples/web.rs`) as a user runs it, against the official PDS: a visitor
//! is sent to the sign-in page, signs in, posts a record that the PDS then serves, is refused a
//! cross-site post, and signs out. This also covers the crate's routes end to end: the sign-in
//! page's token, `POST /oauth/login`, the callback, `SignedIn`, `CsrfForm`, `Error`, sign-out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use atoauth_testkit::{Consent, http_client, pds, reqwest};

struct Example(Child);

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A browser without JavaScript: keeps the cookie, follows nothing by itself.
struct Visitor {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Visitor {
    async fn send(&mut self, request: reqwest::RequestBuilder) -> (u16, Option<String>, String) {
        let request = match &self.cookie {
            Some(cookie) => request.header("cookie", cookie),
            None => request,
        };
        let response = request.send().await.unwrap();
        if let Some(set) = response.headers().get("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, location, response.text().await.unwrap())
    }

    async fn get(&mut self, path: &str) -> (u16, Option<String>, String) {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post(
        &mut self,
        path: &str,
        origin: &str,
        form: &[(&str, &str)],
    ) -> (u16, Option<String>, String) {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }
}

fn csrf(page: &str) -> String {
    let marker = "name=csrf value=\"";
    let start = page.find(marker).expect("a form with a CSRF token") + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_web_example_signs_in_posts_and_signs_out() {
    let pds = pds();
    let alice = pds.alice();
    let exe = std::env::current_exe().unwrap();
    let binary = exe
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("examples/web");
    assert!(
        binary.exists(),
        "run `cargo build --examples` first: {}",
        binary.display()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary)
        .current_dir(dir.path())
        .env("PORT", port.to_string())
        .env("PLC_URL", pds.plc_url().as_str())
        .env("HANDLE_RESOLVER", pds.pds_url().as_str())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = BufReader::new(child.stdout.take().unwrap()).lines().next();
    let _example = Example(child);
    assert!(ready.unwrap().unwrap().starts_with("Listening on"));
    let base = format!("http://127.0.0.1:{port}");
    let mut visitor = Visitor {
        http: http_client(),
        base: base.clone(),
        cookie: None,
    };

    // Not signed in: the protected home page sends the visitor to the sign-in page.
    let (status, location, _) = visitor.get("/").await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
    let (status, _, page) = visitor.get("/login").await;
    assert_eq!(status, 200);
    assert!(
        visitor.cookie.is_some(),
        "the sign-in page sets the browser's cookie"
    );
    let token = csrf(&page);
    let (status, authorize, body) = visitor
        .post(
            "/oauth/login",
            &base,
            &[("csrf", &token), ("identifier", &alice.handle)],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let callback = pds
        .authorize(&authorize.unwrap(), alice, Consent::Accept)
        .await
        .unwrap();
    let (status, location, _) = visitor
        .get(&format!("/oauth/callback?{}", callback.query().unwrap()))
        .await;
    assert_eq!((status, location.as_deref()), (303, Some("/")));
    let (status, _, home) = visitor.get("/").await;
    assert_eq!(status, 200);
    assert!(home.contains(&format!("Hello, {}", alice.handle)), "{home}");

    // A post from our page reaches the PDS; one from another site is refused.
    let token = csrf(&home);
    let text = format!("hello from the web example {port}");
    let (status, _, posted) = visitor
        .post("/post", &base, &[("csrf", &token), ("text", &text)])
        .await;
    assert_eq!(status, 200, "{posted}");
    let uri = posted
        .split("<code id=uri>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    let rkey = uri.rsplit('/').next().unwrap();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("repo", alice.did.as_str()),
            ("collection", "app.bsky.feed.post"),
            ("rkey", rkey),
        ])
        .finish();
    let record: serde_json::Value = http_client()
        .get(format!(
            "{}xrpc/com.atproto.repo.getRecord?{query}",
            pds.pds_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(record["value"]["text"], text.as_str());
    let (status, _, _) = visitor
        .post(
            "/post",
            "https://evil.example",
            &[("csrf", &token), ("text", "forged")],
        )
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = visitor
        .post("/post", &base, &[("csrf", "wrong"), ("text", "forged")])
        .await;
    assert_eq!(status, 403);

    // Signing out: the home page sends the visitor to sign in again.
    let (status, _, _) = visitor
        .post("/oauth/logout", &base, &[("csrf", &token)])
        .await;
    assert_eq!(status, 303);
    let (status, location, _) = visitor.get("/").await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
}
