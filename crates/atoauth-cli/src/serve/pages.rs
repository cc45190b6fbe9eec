//! The app's own pages: plain server-rendered HTML with a little CSS, forms that carry the CSRF
//! token, no JavaScript and no build step.

use atoauth::syntax::Nsid;
use atoauth_axum::html::escape;
use atoauth_axum::{AtoauthWeb, Browser, SignedIn};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:42em;margin:2em auto;padding:0 1em;line-height:1.5;color:#1b1b1b}\
h1{font-size:1.6em}label{display:block;font-weight:600;margin:.5em 0 .25em}\
input[type=text],textarea{width:100%;box-sizing:border-box;padding:.5em;font:inherit;border:1px solid #888;border-radius:4px}\
button{margin-top:.6em;padding:.5em 1.2em;font:inherit;border-radius:4px;border:1px solid #0a58ca;background:#0d6efd;color:#fff;cursor:pointer}\
button.secondary{background:#fff;color:#0a58ca}dl{display:grid;grid-template-columns:max-content 1fr;gap:.25em 1em}\
dt{font-weight:600}code{word-break:break-all}.note{background:#eef6ee;border-left:4px solid #2e7d32;padding:.5em 1em}";

fn layout(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width,initial-scale=1\"><title>{}</title>\
         <style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        escape(title)
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct HomeQuery {
    posted: Option<String>,
}

pub(crate) async fn home(
    State(web): State<AtoauthWeb>,
    mut browser: Browser,
    Query(query): Query<HomeQuery>,
) -> Response {
    if let Some(session) = browser.oauth_session().await {
        let csrf = escape(browser.csrf_token().unwrap_or_default());
        let handle = session
            .handle()
            .map_or_else(|| "handle.invalid".to_owned(), |h| h.to_string());
        let permissions: String = session
            .permissions()
            .iter()
            .map(|p| {
                format!(
                    "<li><code>{}</code> — {}</li>",
                    escape(&p.to_string()),
                    escape(&p.describe())
                )
            })
            .collect();
        let posted = query.posted.map_or_else(String::new, |uri| {
            format!(
                "<p class=note role=status>Posted <code id=posted>{}</code></p>",
                escape(&uri)
            )
        });
        let accounts = accounts_section(&web, &browser, &csrf).await;
        let upgrades = upgrade_section(&web, &session, &csrf);
        let sign_out_all = if browser.accounts().len() > 1 {
            format!(
                "<form method=post action=/oauth/logout><input type=hidden name=csrf value=\"{csrf}\">\
                 <input type=hidden name=all value=1>\
                 <button type=submit id=sign-out-all class=secondary>Sign out of every account</button></form>"
            )
        } else {
            String::new()
        };
        let body = format!(
            "<h1>Signed in as <span id=handle>{handle}</span></h1>{posted}\
             <dl><dt>DID</dt><dd><code id=did>{did}</code></dd><dt>PDS</dt><dd><code>{pds}</code></dd></dl>\
             <h2>Granted permissions</h2><ul id=permissions>{permissions}</ul>{upgrades}\
             <h2>Post</h2><form method=post action=/post>\
             <input type=hidden name=csrf value=\"{csrf}\">\
             <label for=text>What's up?</label><textarea id=text name=text rows=3 maxlength=300 required></textarea>\
             <button type=submit id=post>Post</button></form>\
             <form method=post action=/oauth/logout><input type=hidden name=csrf value=\"{csrf}\">\
             <button type=submit id=sign-out class=secondary>Sign out</button></form>{sign_out_all}{accounts}",
            handle = escape(&handle),
            did = escape(session.did().as_str()),
            pds = escape(session.pds().as_str()),
        );
        return layout("atoauth", &body).into_response();
    }
    let cookie = match browser.ensure().await {
        Ok(cookie) => cookie,
        Err(response) => return response,
    };
    let csrf = escape(browser.csrf_token().unwrap_or_default());
    let body = format!(
        "<h1>Sign in with your AT Protocol account</h1>\
         <p>Use your Bluesky handle or any AT Protocol identity.</p>\
         <form method=post action=/oauth/login>\
         <input type=hidden name=csrf value=\"{csrf}\">\
         <label for=identifier>Handle, DID or server</label>\
         <input type=text id=identifier name=identifier placeholder=alice.bsky.social autocomplete=username required autofocus>\
         <button type=submit id=sign-in>Sign in</button></form>"
    );
    let mut response = layout("Sign in — atoauth", &body).into_response();
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// The browser's other accounts, each with a switch button, and a form to add one.
async fn accounts_section(web: &AtoauthWeb, browser: &Browser, csrf: &str) -> String {
    let limit = web.accounts_per_browser();
    if limit < 2 {
        return String::new();
    }
    let others: String = browser
        .oauth_sessions()
        .await
        .iter()
        .skip(1)
        .map(|other| {
            let did = escape(other.did().as_str());
            let name = other
                .handle()
                .map_or_else(|| other.did().to_string(), |h| h.to_string());
            format!(
                "<li><form method=post action=/oauth/switch><input type=hidden name=csrf value=\"{csrf}\">\
                 <input type=hidden name=did value=\"{did}\"><span class=account>{name}</span> \
                 <button type=submit class=secondary>Switch</button></form></li>",
                name = escape(&name)
            )
        })
        .collect();
    let held = browser.accounts().len();
    let note = if held >= limit {
        "<p>This browser holds as many accounts as it may; adding one signs out the one used least recently.</p>"
    } else {
        ""
    };
    format!(
        "<h2>Accounts</h2><ul id=accounts>{others}</ul>{note}\
         <form method=post action=/oauth/login><input type=hidden name=csrf value=\"{csrf}\">\
         <label for=add-identifier>Add an account</label>\
         <input type=text id=add-identifier name=identifier placeholder=bob.bsky.social required>\
         <button type=submit id=add-account class=secondary>Add account</button></form>"
    )
}

/// A button for each allowed scope that asks for more than the session holds.
fn upgrade_section(web: &AtoauthWeb, session: &atoauth::OAuthSession, csrf: &str) -> String {
    let granted = session.permissions();
    let forms: String = web
        .allowed_scopes()
        .iter()
        .filter(|scope| {
            scope
                .split_whitespace()
                .filter_map(|token| atoauth::scope::Permission::parse(token).ok())
                .any(|wanted| !granted.covers(&wanted))
        })
        .map(|scope| {
            format!(
                "<form method=post action=/oauth/login><input type=hidden name=csrf value=\"{csrf}\">\
                 <input type=hidden name=identifier value=\"{did}\">\
                 <input type=hidden name=scope value=\"{scope}\">\
                 <button type=submit class=upgrade>Grant more: <code>{scope}</code></button></form>",
                did = escape(session.did().as_str()),
                scope = escape(scope),
            )
        })
        .collect();
    if forms.is_empty() {
        String::new()
    } else {
        format!("<h2>More permissions</h2><div id=upgrades>{forms}</div>")
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct PostForm {
    #[serde(default)]
    text: String,
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn post(
    State(web): State<AtoauthWeb>,
    headers: HeaderMap,
    user: SignedIn,
    Form(form): Form<PostForm>,
) -> Response {
    let same_origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|origin| origin == web.public_origin());
    let token_ok = !form.csrf.is_empty()
        && atoauth::secret::State::new(user.csrf_token.clone()).ct_eq(&form.csrf);
    if !same_origin || !token_ok {
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    let text = form.text.trim();
    if text.is_empty() {
        return Redirect::to("/").into_response();
    }
    let created_at = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let record = serde_json::json!({
        "repo": user.session.did(),
        "collection": "app.bsky.feed.post",
        "record": {"$type": "app.bsky.feed.post", "text": text, "createdAt": created_at},
    });
    let Ok(nsid) = Nsid::new("com.atproto.repo.createRecord") else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    match user
        .session
        .procedure::<_, serde_json::Value>(&nsid, &record)
        .await
    {
        Ok(created) => {
            let uri = created["uri"].as_str().unwrap_or_default();
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("posted", uri)
                .finish();
            Redirect::to(&format!("/?{query}")).into_response()
        }
        Err(error) => (
            StatusCode::BAD_GATEWAY,
            layout(
                "Post failed",
                &format!(
                    "<h1>Post failed</h1><p role=alert>{}</p><p><a href=/>Back</a></p>",
                    escape(&error.to_string())
                ),
            ),
        )
            .into_response(),
    }
}
