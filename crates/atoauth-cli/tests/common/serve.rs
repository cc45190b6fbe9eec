//! Starting `atoauth serve` as a child process against the official PDS, and an HTTP client
//! that keeps the session cookie by hand.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};

use atoauth_testkit::{pds, reqwest};

/// A running `atoauth serve`; killed on drop. Its stderr (the logs) is collected.
pub(crate) struct Serve {
    child: Child,
    pub(crate) url: String,
    logs: Arc<Mutex<String>>,
}

impl Serve {
    pub(crate) fn start(data_dir: &Path, extra: &[&str]) -> Self {
        Self::start_on(data_dir, "127.0.0.1:0", extra)
    }

    /// [`Serve::start`] listening on `listen`.
    pub(crate) fn start_on(data_dir: &Path, listen: &str, extra: &[&str]) -> Self {
        let pds = pds();
        let mut child = super::atoauth()
            .args(["--insecure-dev", "--plc-url", pds.plc_url().as_str()])
            .args(["--handle-resolver", pds.pds_url().as_str()])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["serve", "--listen", listen])
            .args(extra)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(String::new()));
        let (sender, receiver) = std::sync::mpsc::channel();
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line
                    .split("open ")
                    .nth(1)
                    .filter(|_| line.contains("listening on"))
                {
                    let _ = sender.send(url.trim().trim_end_matches('/').to_owned());
                }
                let mut logs = sink.lock().unwrap();
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let url = receiver
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("serve did not start: {}", logs.lock().unwrap()));
        Self { child, url, logs }
    }

    pub(crate) fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    pub(crate) fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A visitor without a browser: keeps the cookie and reads the CSRF token from pages.
pub(crate) struct Visitor {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) cookie: Option<String>,
}

pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    pub(crate) set_cookie: Option<String>,
    pub(crate) body: String,
}

impl Visitor {
    pub(crate) fn new(base: &str) -> Self {
        Self {
            http: atoauth_testkit::http_client(),
            base: base.to_owned(),
            cookie: None,
        }
    }

    fn keep(&mut self, response: &reqwest::Response) -> Option<String> {
        let set_cookie = response
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned());
        if let Some(header) = &set_cookie {
            let pair = header.split(';').next().unwrap().to_owned();
            self.cookie = if pair.ends_with('=') {
                None
            } else {
                Some(pair)
            };
        }
        set_cookie
    }

    async fn finish(&mut self, response: reqwest::Response) -> Page {
        let set_cookie = self.keep(&response);
        Page {
            status: response.status().as_u16(),
            location: response
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned()),
            set_cookie,
            body: response.text().await.unwrap(),
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        self.finish(response).await
    }

    pub(crate) async fn post(
        &mut self,
        path: &str,
        origin: Option<&str>,
        form: &[(&str, &str)],
    ) -> Page {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish(),
            );
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await.unwrap();
        self.finish(response).await
    }

    /// The CSRF token in the last page's forms.
    pub(crate) fn csrf(page: &Page) -> String {
        let marker = "name=csrf value=\"";
        let start = page.body.find(marker).expect("a form with a CSRF token") + marker.len();
        page.body[start..].split('"').next().unwrap().to_owned()
    }

    /// Signs in as `account` through the app's routes, playing the user on the PDS; returns the
    /// callback URL the browser was sent to.
    pub(crate) async fn sign_in(&mut self, account: &atoauth_testkit::Account) -> String {
        self.sign_in_with(account, &[]).await
    }

    /// [`Visitor::sign_in`] with more fields in the sign-in form (such as `scope`).
    pub(crate) async fn sign_in_with(
        &mut self,
        account: &atoauth_testkit::Account,
        fields: &[(&str, &str)],
    ) -> String {
        let start = self.get("/").await;
        assert_eq!(start.status, 200);
        let csrf = Self::csrf(&start);
        let base = self.base.clone();
        let mut form = vec![("identifier", account.handle.as_str()), ("csrf", &csrf)];
        form.extend_from_slice(fields);
        let login = self.post("/oauth/login", Some(&base), &form).await;
        assert_eq!(login.status, 303, "{}", login.body);
        let authorize = login.location.unwrap();
        let callback = pds()
            .authorize(&authorize, account, atoauth_testkit::Consent::Accept)
            .await
            .unwrap();
        let query = callback.query().unwrap().to_owned();
        let done = self.get(&format!("/oauth/callback?{query}")).await;
        assert_eq!(done.status, 303, "{}", done.body);
        assert_eq!(done.location.as_deref(), Some("/"));
        callback.to_string()
    }
}
