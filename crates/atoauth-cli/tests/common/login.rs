//! The CLI signed in against the official PDS: `atoauth login --no-browser` with the test
//! playing the user.

use std::path::Path;
use std::process::{Output, Stdio};

use atoauth_testkit::{Account, Consent, pds};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::atoauth;

/// `atoauth --insecure-dev` on the harness, with `data_dir` as its data directory.
pub(crate) fn base(data_dir: &Path) -> std::process::Command {
    let pds = pds();
    let mut command = atoauth();
    command
        .args(["--insecure-dev", "--plc-url", pds.plc_url().as_str()])
        .args(["--handle-resolver", pds.pds_url().as_str()])
        .arg("--data-dir")
        .arg(data_dir);
    command
}

/// Runs `atoauth <args>` to the end.
pub(crate) async fn run(data_dir: &Path, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::from(base(data_dir));
    command.args(args).output().await.unwrap()
}

/// Runs `atoauth login <input> --no-browser`, plays the user, follows the redirect like a
/// browser, and returns the finished process's output (stderr as read).
pub(crate) async fn login(
    data_dir: &Path,
    input: &str,
    account: &Account,
    consent: Consent,
    extra: &[&str],
) -> (Output, String) {
    let mut command = tokio::process::Command::from(base(data_dir));
    command
        .args(["login", input, "--no-browser", "--timeout", "60"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    let url = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("login ended before printing the URL: {seen}"));
        seen.push_str(&line);
        seen.push('\n');
        // The URL is alone on its line.
        if line.starts_with("http://") || line.starts_with("https://") {
            assert!(!line.contains(' '), "{line}");
            break line;
        }
    };
    let redirect = pds().authorize(&url, account, consent).await.unwrap();
    assert!(
        redirect.as_str().starts_with("http://127.0.0.1:"),
        "{redirect}"
    );
    // The browser follows the redirect to the CLI's loopback listener.
    let (status, page) = pds().browser_get(redirect.as_str()).await;
    assert_eq!(status, 200);
    assert!(page.contains("You can close this tab"), "{page}");
    while let Some(line) = lines.next_line().await.unwrap() {
        seen.push_str(&line);
        seen.push('\n');
    }
    let output = child.wait_with_output().await.unwrap();
    (output, seen)
}
