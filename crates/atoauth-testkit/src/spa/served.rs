//! `atoauth serve --spa` as a child process, with everything it logs kept for the test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// `target/debug/atoauth`, built by `cargo test --workspace` (or `cargo build -p atoauth-cli`).
///
/// # Panics
/// When it is missing.
#[must_use]
pub fn atoauth_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/debug")
        .join("atoauth");
    assert!(
        path.exists(),
        "{} is missing: cargo build -p atoauth-cli",
        path.display()
    );
    path
}

/// A running `atoauth serve`; stopped when dropped.
#[derive(Debug)]
pub struct Served {
    child: Child,
    /// The URL it prints to open, without a trailing slash.
    pub url: String,
    logs: Arc<Mutex<String>>,
}

impl Served {
    /// Everything it wrote to stderr so far.
    ///
    /// # Panics
    /// Never in practice (a poisoned lock).
    #[must_use]
    pub fn logs(&self) -> String {
        self.logs.lock().expect("the log buffer").clone()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `atoauth --insecure-dev <global> serve --listen 127.0.0.1:0 --spa <dir> <serve_args>`
/// (a `--listen` in `serve_args` wins) and waits for its "listening" line.
///
/// # Panics
/// When it does not start within a minute; the message holds what it logged.
#[must_use]
pub fn serve(dir: &Path, global: &[&str], serve_args: &[&str]) -> Served {
    let mut command = Command::new(atoauth_binary());
    command.arg("--insecure-dev").args(global).arg("serve");
    if !serve_args.contains(&"--listen") {
        command.args(["--listen", "127.0.0.1:0"]);
    }
    let mut child = command
        .arg("--spa")
        .arg(dir)
        .args(serve_args)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("atoauth serve starts");
    let stderr = child.stderr.take().expect("stderr");
    let logs = Arc::new(Mutex::new(String::new()));
    let kept = Arc::clone(&logs);
    let (ready, url) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening on")
                && let Some(found) = line.split("open ").nth(1)
            {
                let _ = ready.send(found.trim().trim_end_matches('/').to_owned());
            }
            if let Ok(mut logs) = kept.lock() {
                logs.push_str(&line);
                logs.push('\n');
            }
        }
    });
    let url = url
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| {
            let _ = child.kill();
            panic!(
                "atoauth serve --spa did not start:\n{}",
                logs.lock().map(|l| l.clone()).unwrap_or_default()
            )
        });
    Served { child, url, logs }
}
