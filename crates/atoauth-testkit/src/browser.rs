//! Headless Chromium through chromedriver (WebDriver, via fantoccini), kept off the network:
//! only `localhost` and `127.0.0.1` resolve. One [`Driver`] per test, started in the test body
//! (the parent-death signal follows the starting thread). Dropping it stops chromedriver, which
//! takes Chromium down through its debugging pipe, then removes the scratch directory.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};

/// Chromium's binary (not Debian's `/usr/bin/chromium` wrapper, which adds network features).
pub const CHROMIUM: &str = "/usr/lib/chromium/chromium";

/// A running chromedriver.
#[derive(Debug)]
pub struct Driver {
    child: Child,
    port: u16,
    dir: PathBuf,
    /// Profiles made so far: each browser session gets its own.
    profiles: std::sync::atomic::AtomicU32,
}

/// What a browser session may reach besides `localhost` and `127.0.0.1`.
#[derive(Clone, Debug, Default)]
pub struct Reach {
    /// Host names that resolve to 127.0.0.1 (an https app on an ordinary name).
    pub hosts: Vec<String>,
    /// Base64 SHA-256 hashes of certificates' public keys to trust (a test CA's, with the
    /// server sending it in its chain).
    pub trusted_spki: Vec<String>,
}

impl Driver {
    /// Starts chromedriver on a free port, with a short scratch directory.
    ///
    /// # Panics
    /// When chromedriver is not installed (`apt-get install chromium chromium-driver`) or does
    /// not start.
    pub fn start(name: &str) -> Self {
        let dir = PathBuf::from(format!("/tmp/e2e-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tmp")).expect("a scratch directory");
        let mut child = Command::new("setpriv")
            .args([
                "--pdeathsig",
                "KILL",
                "chromedriver",
                "--port=0",
                "--log-level=WARNING",
            ])
            .env("TMPDIR", dir.join("tmp"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (apt-get install chromium chromium-driver)");
        let stdout = child.stdout.take().expect("chromedriver's stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) =
                    line.strip_prefix("ChromeDriver was started successfully on port ")
                {
                    let _ = sender.send(port.trim_end_matches('.').parse::<u16>().unwrap_or(0));
                }
            }
        });
        let port = receiver
            .recv_timeout(Duration::from_secs(20))
            .expect("chromedriver reports its port");
        Self {
            child,
            port,
            dir,
            profiles: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// A browser session (a fresh profile), headless and off the network.
    ///
    /// # Panics
    /// When chromedriver cannot start Chromium.
    pub async fn browser(&self) -> Client {
        self.browser_with(&Reach::default()).await
    }

    /// A browser session (a fresh profile of its own: another device) that also reaches
    /// `reach`.
    ///
    /// # Panics
    /// When chromedriver cannot start Chromium.
    pub async fn browser_with(&self, reach: &Reach) -> Client {
        let profile = self
            .profiles
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mapped: String = reach
            .hosts
            .iter()
            .map(|host| format!("MAP {host} 127.0.0.1, "))
            .collect();
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--disable-extensions".to_owned(),
            "--window-size=1280,900".to_owned(),
            "--remote-debugging-pipe".to_owned(),
            format!(
                "--user-data-dir={}",
                self.dir.join(format!("data-{profile}")).display()
            ),
            format!(
                "--host-resolver-rules={mapped}MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"
            ),
        ];
        if !reach.trusted_spki.is_empty() {
            args.push(format!(
                "--ignore-certificate-errors-spki-list={}",
                reach.trusted_spki.join(",")
            ));
        }
        let capabilities = serde_json::json!({
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args}
        });
        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        if let serde_json::Value::Object(map) = capabilities {
            builder.capabilities(map);
        }
        builder
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

/// Plays the user on the PDS's own sign-in and consent pages in `browser` (already on them):
/// the password (and the username when the login hint did not fill it), then "Authorize".
///
/// # Panics
/// When a page does not appear within a minute.
pub async fn consent_at_the_pds(browser: &Client, account: &crate::Account) {
    use fantoccini::Locator;
    let wait = |locator: Locator<'static>| async move {
        browser
            .wait()
            .at_most(Duration::from_secs(60))
            .for_element(locator)
            .await
            .unwrap_or_else(|e| panic!("waiting for {locator:?} on the PDS's pages: {e}"))
    };
    let password = wait(Locator::Css("input[name=password]")).await;
    let username = browser
        .find(Locator::Css("input[name=username]"))
        .await
        .expect("the username field");
    if username
        .prop("value")
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
        .is_empty()
    {
        username
            .send_keys(&account.handle)
            .await
            .expect("typing the username");
    }
    password
        .send_keys(&account.password)
        .await
        .expect("typing the password");
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("the sign-in button")
        .click()
        .await
        .expect("signing in at the PDS");
    wait(Locator::XPath("//button[normalize-space()='Authorize']"))
        .await
        .click()
        .await
        .expect("authorizing");
}

impl Drop for Driver {
    fn drop(&mut self) {
        let browser_pid = std::fs::read_link(self.dir.join("data/SingletonLock"))
            .ok()
            .and_then(|target| {
                target
                    .to_string_lossy()
                    .rsplit('-')
                    .next()
                    .and_then(|pid| pid.parse::<u32>().ok())
            });
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Chromium keeps writing its profile for a moment after the pipe closes.
        if let Some(pid) = browser_pid {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                if stat.is_empty() || stat.contains(") Z ") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
